"""arenagrad: a scalar reverse-mode autograd engine whose graph lives in C++.

micrograd's programming model (``Value``, ``.data``, ``.grad``, ``.backward()``)
with PyTorch's vocabulary on top (``nn``, ``optim``, ``data``)::

    import arenagrad as ag
    a, b = ag.Value(-4.0), ag.Value(2.0)
    g = (a * b + b**3).relu()
    g.backward()
    print(g, a.grad, b.grad)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, List

from . import (
    display,  # noqa: F401  (Value's notebook display: a Value shows its graph in Jupyter)
    random,  # noqa: F401  (ag.random, as torch.random; not in __all__, which would shadow the random module on import *)
)
from ._core import (
    NODE_BYTES,
    CompiledGraph,
    Value,
    dot,
    engine_stats,
    get_num_threads,
    is_anomaly_enabled,
    is_grad_enabled,
    log_softmax,
    logsumexp,
    mean,
    set_num_threads,
    softmax,
    sum,
)
from .autograd import grad
from .grad_mode import detect_anomaly, enable_grad, no_grad, set_detect_anomaly, set_grad_enabled
from .random import manual_seed
from .replay import compile

__version__ = "0.1.0"

__all__ = [
    "Value",
    "sum",
    "mean",
    "dot",
    "logsumexp",
    "softmax",
    "log_softmax",
    "set_num_threads",
    "get_num_threads",
    "no_grad",
    "enable_grad",
    "detect_anomaly",
    "set_detect_anomaly",
    "is_anomaly_enabled",
    "set_grad_enabled",
    "is_grad_enabled",
    "engine_stats",
    "compile",
    "grad",
    "CompiledGraph",
    "NODE_BYTES",
    "manual_seed",
    "data",
    "losses",
    "nn",
    "optim",
    "optimize",
    "viz",
]

# The numpy-backed submodules load on first use (``ag.nn``, ``from arenagrad import nn``,
# ``import arenagrad.nn``): numpy alone costs several times the rest of ``import arenagrad``,
# and code that only builds Values never needs it.
_LAZY_SUBMODULES = ("data", "losses", "nn", "optim", "optimize", "viz")

if TYPE_CHECKING:
    from . import data, losses, nn, optim, optimize, viz


def __getattr__(name: str) -> Any:
    if name in _LAZY_SUBMODULES:
        # import_module binds the submodule as a package attribute, so this runs once per name.
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(_LAZY_SUBMODULES))
