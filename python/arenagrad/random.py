"""Where arenagrad's random numbers come from, and how ``random.seed`` reproduces them.

Everything in arenagrad that draws random numbers (weight init in ``nn``, shuffling in
``data.DataLoader``, the toy dataset generators, ``data.train_test_split``) takes a
``seed=None`` argument and turns it into a ``numpy.random.Generator`` with
:func:`rng_from`. The rule, in order:

1. An explicit ``seed=`` (an int, or a ``Generator`` passed through) gives a private
   stream: reproducible whatever else ran before, and it leaves every other stream alone.
2. After :func:`manual_seed` (``arenagrad.manual_seed``), ``seed=None`` draws from one
   package generator, as ``torch.manual_seed`` does for PyTorch; Python's ``random``
   state no longer matters.
3. Otherwise (the default) each ``seed=None`` draw (one model, layer or neuron
   construction, one shuffled epoch, one generated data set) seeds a fresh generator
   with 64 bits from Python's :mod:`random` module. So ``random.seed(1337)`` alone makes
   a micrograd script (whose ``nn`` draws its weights from ``random`` too) give the same
   numbers on every run, and without it every run differs, as micrograd's does.

Rule 3 advances Python's ``random`` state by one 64-bit draw per construction; the
numbers are not micrograd's (the default init schemes differ), only as reproducible.
:func:`use_python_random` goes back from rule 2 to rule 3.

numpy is imported on the first draw, not with the package, so ``import arenagrad``
stays cheap.
"""

from __future__ import annotations

import operator
import random as _pyrandom
from typing import TYPE_CHECKING, Optional, Union

if TYPE_CHECKING:
    import numpy as np

__all__ = ["manual_seed", "use_python_random", "get_rng", "rng_from"]

SeedLike = Union[int, "np.random.Generator", None]

# The generator manual_seed reseeds; made on first use so that numpy loads only when needed.
_rng: Optional[np.random.Generator] = None
# True from manual_seed until use_python_random: seed=None then means _rng (rule 2).
_manual: bool = False


def _shared() -> np.random.Generator:
    global _rng
    if _rng is None:
        import numpy as np

        _rng = np.random.default_rng()
    return _rng


def _python_seed() -> int:
    # 64 bits: enough that two draws from different random.seed values practically
    # never collide, and PCG64 takes them as its seed directly.
    return _pyrandom.getrandbits(64)


def manual_seed(seed: int) -> np.random.Generator:
    """Seed the package generator, make every ``seed=None`` draw use it, and return it.

    From this call on, models, loaders and data sets built without ``seed=`` are a
    function of ``seed`` and of what was drawn since, not of Python's ``random`` state.
    The generator is reseeded in place rather than replaced, so code that kept a
    reference from :func:`get_rng` sees the new stream too. After ``manual_seed(s)`` it
    produces the same numbers as ``numpy.random.default_rng(s)``.

    Raises:
        TypeError: ``seed`` is not an integer.
        ValueError: ``seed`` is negative.
    """
    global _manual
    seed = operator.index(seed)  # reject floats/None early with a TypeError
    import numpy as np

    rng = _shared()
    rng.bit_generator.state = np.random.PCG64(seed).state
    _manual = True  # only once the seed was accepted
    return rng


def use_python_random() -> None:
    """Undo :func:`manual_seed`: ``seed=None`` draws follow Python's ``random`` state again.

    This is the state a fresh process starts in; ``random.seed(n)`` then fixes every
    model, shuffle and data set built without ``seed=``.
    """
    global _manual
    _manual = False


def get_rng() -> np.random.Generator:
    """Return the package generator, the one :func:`manual_seed` reseeds.

    Until ``manual_seed`` is called (or after :func:`use_python_random`), each call first
    reseeds it in place with 64 bits from Python's ``random`` module, so what it draws
    follows ``random.seed`` like every other ``seed=None`` draw.
    """
    rng = _shared()
    if not _manual:
        import numpy as np

        rng.bit_generator.state = np.random.PCG64(_python_seed()).state
    return rng


def rng_from(seed: Optional[SeedLike] = None) -> np.random.Generator:
    """Generator for a ``seed=`` argument, by the rule in this module's docstring.

    ``None`` gives the package generator after :func:`manual_seed`, else a fresh one
    seeded from Python's ``random`` (a new object per call, so a construction holding it
    is never reseeded under its feet). An int gives ``numpy.random.default_rng(seed)``;
    an existing ``numpy.random.Generator`` is passed through unchanged.
    """
    import numpy as np

    if seed is None:
        if _manual:
            return _shared()
        return np.random.default_rng(_python_seed())
    return np.random.default_rng(seed)
