"""Optimizers and learning-rate schedulers with PyTorch's update rules.

A parameter is anything with float ``.data`` and ``.grad`` attributes (an arenagrad
``Value``; a micrograd ``Value`` works too). There is one parameter group per optimizer:
its hyperparameters are plain attributes (``opt.lr``, ``opt.momentum``, ...), which is what
the schedulers below write to.

Per-parameter state lives in float64 numpy arrays indexed like ``opt.params``. A step
gathers every ``.grad`` and ``.data`` into arrays, does the update with whole-array
arithmetic, and writes ``.data`` back: for a scalar engine the per-parameter attribute
traffic is the cost, so the gathers and the write-back (and ``zero_grad``) are one C
loop each (``_core._gather``, ``_core._scatter``), which read an arenagrad Value's
node directly and anything else through its attributes.

The arithmetic follows ``torch.optim``'s single-tensor (``foreach=False``) code path
operation by operation, so trajectories agree with PyTorch's float64 ones to rounding.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import numpy as np

from . import _core

__all__ = ["Optimizer", "SGD", "Adam", "LRScheduler", "StepLR", "LinearLR"]


class Optimizer:
    """Base class: holds the parameters, the hyperparameters and the per-parameter state.

    Args:
        params: iterable of objects with float ``.data`` and ``.grad`` attributes.
        defaults: hyperparameter names and values; each becomes an attribute
            (``self.lr``...) and an entry of :meth:`state_dict`.
    """

    def __init__(self, params: Iterable[Any], defaults: Dict[str, Any]) -> None:
        if hasattr(params, "data") and hasattr(params, "grad"):
            # A lone Value: iterating it would fail later with a confusing message.
            raise TypeError(
                "params argument given to the optimizer should be an iterable of "
                f"parameters, but got {type(params).__name__}"
            )
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        for p in params:
            if not (hasattr(p, "data") and hasattr(p, "grad")):
                raise TypeError(
                    "optimizer can only optimize objects with .data and .grad, "
                    f"but one of the params is {type(p).__name__}"
                )
        if len({id(p) for p in params}) != len(params):
            # A duplicate would get two updates computed from the same old value, and
            # the last write would win; keep the first occurrence instead.
            warnings.warn(
                "optimizer contains duplicate parameters; each is kept once",
                stacklevel=3,
            )
            seen: set = set()
            params = [p for p in params if not (id(p) in seen or seen.add(id(p)))]
        self.params: List[Any] = params
        self.defaults: Dict[str, Any] = dict(defaults)
        for name, value in self.defaults.items():
            setattr(self, name, value)
        # Per-parameter arrays (length len(params)) and counters, filled lazily by step().
        self.state: Dict[str, Any] = {}

    def __repr__(self) -> str:
        hyper = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.defaults)
        return f"{type(self).__name__}({len(self.params)} params, {hyper})"

    def zero_grad(self) -> None:
        """Set every parameter's ``.grad`` to 0.0 (leaf gradients accumulate)."""
        _core._scatter(self.params, "grad", 0.0)

    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        """Update the parameters from their ``.grad``; returns ``closure()`` if given."""
        raise NotImplementedError

    def _gather(self) -> Tuple[np.ndarray, np.ndarray]:
        """Current (data, grad) of all parameters as float64 arrays."""
        return _core._gather(self.params, "data"), _core._gather(self.params, "grad")

    def _scatter(self, data: np.ndarray) -> None:
        _core._scatter(self.params, "data", data)

    def _state_copy(self) -> Dict[str, Any]:
        """The state with its arrays copied. A step updates a copy and keeps it only
        once the new data is written, so a step that fails before it writes (out of
        memory, say) leaves the state as it was too."""
        return {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in self.state.items()}

    def state_dict(self) -> Dict[str, Any]:
        """Hyperparameters plus ``"state"``: plain Python numbers and numpy array copies."""
        sd: Dict[str, Any] = {name: getattr(self, name) for name in self.defaults}
        sd["state"] = self._state_copy()
        return sd

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Restore hyperparameters (including ``lr``) and state saved by :meth:`state_dict`.

        The optimizer must hold the same number of parameters, in the same order.
        """
        unknown = set(state_dict) - set(self.defaults) - {"state"}
        if unknown:
            raise ValueError(f"unexpected keys in {type(self).__name__} state_dict: {sorted(unknown)}")
        n = len(self.params)
        state: Dict[str, Any] = {}
        for k, v in state_dict.get("state", {}).items():
            if isinstance(v, np.ndarray):
                if v.shape != (n,):
                    raise ValueError(f"state '{k}' has shape {v.shape}, but the optimizer has {n} params")
                v = np.array(v, dtype=np.float64)  # own copy
            state[k] = v
        for name in self.defaults:
            if name in state_dict:
                setattr(self, name, state_dict[name])
        self.state = state


class SGD(Optimizer):
    r"""Stochastic gradient descent, optionally with momentum, as ``torch.optim.SGD``.

    For each parameter, with :math:`g` its gradient:

    .. code-block:: text

        g = -g                      if maximize
        g = g + weight_decay * p    if weight_decay != 0
        if momentum != 0:
            b = g                                  on the first step
            b = momentum * b + (1 - dampening) * g afterwards
            g = g + momentum * b   if nesterov else   g = b
        p = p - lr * g

    Args:
        params: parameters to optimize.
        lr: learning rate.
        momentum: momentum factor.
        dampening: dampening for momentum.
        weight_decay: L2 penalty coefficient.
        nesterov: use Nesterov momentum (needs ``momentum > 0`` and ``dampening == 0``).
        maximize: ascend instead of descend.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        # Positional order (lr, momentum, dampening, weight_decay, nesterov) is torch's.
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(
            params,
            dict(
                lr=lr,
                momentum=momentum,
                dampening=dampening,
                weight_decay=weight_decay,
                nesterov=nesterov,
                maximize=maximize,
            ),
        )

    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        """Perform one SGD update; returns ``closure()`` if a closure is given."""
        loss = closure() if closure is not None else None
        plain = not (self.maximize or self.weight_decay != 0 or self.momentum != 0)
        if plain and _core._sgd_update(self.params, self.lr):  # p -= lr * g, in one C loop
            return loss
        p, g = self._gather()
        state = self._state_copy()
        if self.maximize:
            g = -g
        if self.weight_decay != 0:
            g = g + self.weight_decay * p
        if self.momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                # torch starts the buffer at the first gradient, undampened.
                buf = state["momentum_buffer"] = g.copy()
            else:
                buf *= self.momentum
                buf += (1 - self.dampening) * g
            g = g + self.momentum * buf if self.nesterov else buf
        p -= self.lr * g
        self._scatter(p)
        self.state = state
        return loss


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2014) with torch's bias correction, as ``torch.optim.Adam``.

    For each parameter, at step :math:`t = 1, 2, \dots`:

    .. code-block:: text

        g = -g                      if maximize
        g = g + weight_decay * p    if weight_decay != 0   (L2, not AdamW's decoupled decay)
        m = m + (1 - beta1) * (g - m)
        v = beta2 * v + (1 - beta2) * g * g
        vmax = max(vmax, v); use vmax in place of v below   if amsgrad
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    Args:
        params: parameters to optimize.
        lr: learning rate.
        betas: decay rates of the running averages of the gradient and its square.
        eps: added to the denominator for numerical stability.
        weight_decay: L2 penalty coefficient.
        amsgrad: use the AMSGrad variant (running maximum of the second moment).
        maximize: ascend instead of descend.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        super().__init__(
            params,
            dict(
                lr=lr,
                betas=(float(betas[0]), float(betas[1])),
                eps=eps,
                weight_decay=weight_decay,
                amsgrad=amsgrad,
                maximize=maximize,
            ),
        )

    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        """Perform one Adam update; returns ``closure()`` if a closure is given."""
        loss = closure() if closure is not None else None
        p, g = self._gather()
        beta1, beta2 = self.betas
        state = self._state_copy()
        if not state:
            n = len(p)
            state["step"] = 0
            state["exp_avg"] = np.zeros(n)
            state["exp_avg_sq"] = np.zeros(n)
            if self.amsgrad:
                state["max_exp_avg_sq"] = np.zeros(n)
        elif self.amsgrad and "max_exp_avg_sq" not in state:
            # amsgrad switched on mid-run: torch would start the maximum at zero too.
            state["max_exp_avg_sq"] = np.zeros(len(p))
        state["step"] += 1
        step = state["step"]
        m, v = state["exp_avg"], state["exp_avg_sq"]

        if self.maximize:
            g = -g
        if self.weight_decay != 0:
            g = g + self.weight_decay * p

        # m.lerp_(g, 1 - beta1), with the branch torch's lerp takes for the weight.
        w = 1 - beta1
        if w < 0.5:
            m += w * (g - m)
        else:
            m[:] = g - (g - m) * (1 - w)
        v *= beta2
        v += (1 - beta2) * g * g

        bias_correction1 = 1 - beta1**step
        bias_correction2_sqrt = (1 - beta2**step) ** 0.5
        step_size = self.lr / bias_correction1
        if self.amsgrad:
            vmax = state["max_exp_avg_sq"]
            np.maximum(vmax, v, out=vmax)
            denom = np.sqrt(vmax) / bias_correction2_sqrt + self.eps
        else:
            denom = np.sqrt(v) / bias_correction2_sqrt + self.eps
        p -= step_size * (m / denom)
        self._scatter(p)
        self.state = state
        return loss


class LRScheduler:
    """Base class: sets ``optimizer.lr`` from a closed form in the epoch count.

    Like torch, constructing a scheduler performs the epoch-0 step (so ``optimizer.lr``
    may change immediately, e.g. for :class:`LinearLR`), and ``step()`` is called once per
    epoch after ``optimizer.step()``. The base learning rate is the optimizer's lr when the
    first scheduler was attached (kept as ``optimizer.initial_lr``, as torch keeps
    ``initial_lr`` in the param group), so two schedulers on one optimizer share it.
    """

    def __init__(self, optimizer: Optimizer) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        if not hasattr(optimizer, "initial_lr"):
            optimizer.initial_lr = optimizer.lr  # type: ignore[attr-defined]
        self.base_lr: float = optimizer.initial_lr  # type: ignore[attr-defined]
        self.last_epoch = -1
        self._last_lr: List[float] = []
        self.step()

    def get_lr(self) -> float:
        """Learning rate at ``self.last_epoch``."""
        raise NotImplementedError

    def step(self) -> None:
        """Advance one epoch and write the new learning rate into the optimizer."""
        self.last_epoch += 1
        lr = self.get_lr()
        self.optimizer.lr = lr
        self._last_lr = [lr]

    def get_last_lr(self) -> List[float]:
        """Last learning rate set by this scheduler, as a one-element list (torch's form)."""
        return list(self._last_lr)

    def state_dict(self) -> Dict[str, Any]:
        """Everything but the optimizer, as torch's schedulers do."""
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Restore a state saved by :meth:`state_dict`."""
        self.__dict__.update(state_dict)


class StepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs.

    ``lr = base_lr * gamma ** (epoch // step_size)``
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        if step_size < 1:
            # torch does not check and fails later with ZeroDivisionError for 0.
            raise ValueError(f"Invalid step_size: {step_size}, expected a positive int")
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer)

    def get_lr(self) -> float:
        return self.base_lr * self.gamma ** (self.last_epoch // self.step_size)


class LinearLR(LRScheduler):
    """Scale the learning rate linearly from ``start_factor`` to ``end_factor``.

    ``lr = base_lr * (start + (end - start) * min(total_iters, epoch) / total_iters)``,
    constant once ``epoch >= total_iters``.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
    ) -> None:
        if start_factor > 1.0 or start_factor <= 0:
            raise ValueError("Starting multiplicative factor expected to be greater than 0 and less or equal to 1.")
        if end_factor > 1.0 or end_factor < 0:
            raise ValueError("Ending multiplicative factor expected to be between 0 and 1.")
        if total_iters < 1:
            # The closed form divides by total_iters.
            raise ValueError(f"Invalid total_iters: {total_iters}, expected a positive int")
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = total_iters
        super().__init__(optimizer)

    def get_lr(self) -> float:
        t = min(self.total_iters, self.last_epoch)
        return self.base_lr * (self.start_factor + (self.end_factor - self.start_factor) * t / self.total_iters)
