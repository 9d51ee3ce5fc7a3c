"""The package-wide random number generator.

Everything in arenagrad that draws random numbers (weight init in ``nn``, shuffling in
``data.DataLoader``, the toy dataset generators) goes through one
``numpy.random.Generator``, so a single ``arenagrad.manual_seed(n)`` makes a whole
script reproducible, as ``torch.manual_seed`` does for PyTorch.

Functions that take a ``seed=None`` argument call :func:`rng_from`: an explicit seed gives
a private generator (reproducible regardless of what else ran before), ``None`` draws
from the shared one.
"""

from __future__ import annotations

import operator
from typing import Optional, Union

import numpy as np

__all__ = ["manual_seed", "get_rng", "rng_from"]

SeedLike = Union[int, np.random.Generator, None]

# Seeded from OS entropy until someone calls manual_seed, like torch's default generator.
_rng: np.random.Generator = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the package generator and return it.

    The generator is reseeded in place rather than replaced, so code that kept a
    reference from :func:`get_rng` sees the new stream too. After ``manual_seed(s)`` the
    generator produces the same numbers as ``numpy.random.default_rng(s)``.
    """
    seed = operator.index(seed)  # reject floats/None early with a TypeError
    _rng.bit_generator.state = np.random.PCG64(seed).state
    return _rng


def get_rng() -> np.random.Generator:
    """Return the package-wide generator (the one :func:`manual_seed` reseeds)."""
    return _rng


def rng_from(seed: Optional[SeedLike] = None) -> np.random.Generator:
    """Generator for a ``seed=`` argument: the shared one for ``None``, else a fresh one.

    An existing ``numpy.random.Generator`` is passed through unchanged.
    """
    if seed is None:
        return _rng
    return np.random.default_rng(seed)
