"""micrograd's ``Neuron``, ``Layer`` and ``MLP``, call-compatible, one fused dot per neuron.

``Neuron(nin, nonlin=True)``, ``Layer(nin, nout, **kwargs)`` and ``MLP(nin, nouts)`` take
the arguments of ``micrograd.nn`` and return the same things: a neuron returns a
``Value``; a layer a list of ``Value``\\ s, or a single ``Value`` when it has one neuron;
an MLP has ReLU hidden layers and a linear last layer. The attributes have micrograd's
names (``Neuron.w``, ``Neuron.b``, ``Neuron.nonlin``, ``Layer.neurons``, ``MLP.layers``) and
``parameters()`` lists them in micrograd's order, so code written for micrograd runs
unchanged.

What differs is the cost: a neuron's weighted sum is one engine node
(``ag.dot(w, x) + b``) instead of ``2 * nin`` Python-level nodes. A layer calls each of
its neurons, so a ``Neuron`` subclass with a ``forward`` of its own works inside one.

Keyword arguments beyond micrograd's: ``activation`` (``"relu"``, ``"leaky_relu"``,
``"tanh"``, ``"sigmoid"`` or ``"linear"``; it overrides ``nonlin``), ``init``
(see :mod:`arenagrad.nn.init`), ``seed`` and ``negative_slope`` (of ``leaky_relu``).
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Sequence, Union

from .._core import Value, dot
from ..random import SeedLike, rng_from
from .activation import activation_fn, check_activation
from .init import init_weights
from .inputs import as_inputs, check_width
from .module import Module

__all__ = ["Neuron", "Layer", "MLP"]


class Neuron(Module):
    """One unit: ``activation(w . x + b)``.

    Args:
        nin: number of inputs.
        nonlin: micrograd's switch: ReLU if true, linear if false. Ignored when
            ``activation`` is given.
        activation: ``"relu"``, ``"leaky_relu"``, ``"tanh"``, ``"sigmoid"`` or ``"linear"``.
        init: ``"kaiming"``, ``"xavier"``, ``"uniform"`` (micrograd's ``uniform(-1, 1)``), or
            ``None`` for He init before ReLU-like activations and Glorot init otherwise.
        seed: an int (or numpy ``Generator``) for a private stream; ``None`` follows
            ``random.seed``, or ``arenagrad.manual_seed`` once called (see
            :mod:`arenagrad.random`).
        negative_slope: slope of ``leaky_relu`` for negative inputs.
        fan_out: width of the layer the neuron belongs to (Xavier init uses it; ``Layer``
            passes its ``nout``).

    Attributes:
        w: the ``nin`` weights (list of ``Value``).
        b: the bias ``Value`` (starts at 0).
        nonlin: whether the output goes through a nonlinearity.
        activation: the activation's name, a key of ``nn.activation.ACTIVATIONS`` (settable).
        negative_slope: slope of ``leaky_relu`` for negative inputs (settable).
    """

    _act: Callable[[Value], Value]  # made from activation and negative_slope (see __setattr__)

    def __init__(
        self,
        nin: int,
        nonlin: bool = True,
        *,
        activation: Optional[str] = None,
        init: Optional[str] = None,
        seed: SeedLike = None,
        negative_slope: float = 0.01,
        fan_out: int = 1,
    ) -> None:
        super().__init__()
        nin = check_width("nin", nin)
        if activation is None:
            activation = "relu" if nonlin else "linear"
        check_activation(activation)
        weights = init_weights(rng_from(seed), nin, fan_out, init, activation, negative_slope, rows=1)[0]
        self.w: List[Value] = [Value(x) for x in weights.tolist()]
        self.b: Value = Value(0.0)
        self.negative_slope: float = float(negative_slope)
        self.activation: str = activation

    def __setattr__(self, name: str, value: Any) -> None:
        # forward applies one C-level callable made from the activation's name and slope
        # (no Python frame per neuron); assigning either of the two rebuilds it.
        if name == "activation":
            check_activation(value)
        super().__setattr__(name, value)
        if name in ("activation", "negative_slope") and "activation" in vars(self):
            super().__setattr__("_act", activation_fn(self.activation, self.negative_slope))

    @property
    def nonlin(self) -> bool:
        """micrograd's flag: true unless the neuron is linear (setting it picks ReLU or linear)."""
        return self.activation != "linear"

    @nonlin.setter
    def nonlin(self, value: bool) -> None:
        self.activation = "relu" if value else "linear"

    def forward(self, x: Any) -> Value:
        """``activation(dot(w, x) + b)`` for one sample ``x`` of ``nin`` floats or Values."""
        if type(x) is not list:
            x = as_inputs(x)
        if len(x) != len(self.w):
            raise ValueError(f"{self!r} expects {len(self.w)} inputs, got {len(x)}")
        return self._act(dot(self.w, x) + self.b)

    def extra_repr(self) -> str:
        return f"{len(self.w)}, activation={self.activation!r}"


class Layer(Module):
    """``nout`` neurons reading the same ``nin`` inputs.

    Keyword arguments are passed to every :class:`Neuron`; with one ``seed`` the layer
    draws all its weights from one stream, so neurons differ from each other.

    Returns (when called) a list of ``nout`` Values, or the Value itself when
    ``nout == 1``, as micrograd does.
    """

    def __init__(self, nin: int, nout: int, *, seed: SeedLike = None, **kwargs: Any) -> None:
        super().__init__()
        self.nin: int = check_width("nin", nin)
        self.nout: int = check_width("nout", nout)
        rng = rng_from(seed)  # one generator shared by the neurons
        self.neurons: List[Neuron] = [Neuron(self.nin, seed=rng, fan_out=self.nout, **kwargs) for _ in range(self.nout)]

    def forward(self, x: Any) -> Union[Value, List[Value]]:
        """Every neuron called on ``x`` (so a ``Neuron`` subclass's own ``forward`` is used)."""
        if type(x) is not list:
            x = as_inputs(x)  # once here, not once per neuron
        if len(x) != self.nin:
            raise ValueError(f"Layer({self.nin}, {self.nout}) expects {self.nin} inputs, got {len(x)}")
        out = [n(x) for n in self.neurons]
        return out[0] if len(out) == 1 else out

    def extra_repr(self) -> str:
        acts = {n.activation for n in self.neurons}
        act = acts.pop() if len(acts) == 1 else "mixed"
        return f"{self.nin}, {self.nout}, activation={act!r}"

    def __repr__(self) -> str:
        # Folded to one line while the neurons are all alike, as they are when built
        # here; a layer whose neurons were swapped for different ones shows them all.
        first = repr(self.neurons[0]) if self.neurons else ""
        if len(self.neurons) == self.nout and all(repr(n) == first for n in self.neurons):
            return f"Layer({self.extra_repr()})"
        return super().__repr__()


class MLP(Module):
    """A multi-layer perceptron: ``nin`` inputs, then one layer per entry of ``nouts``.

    Hidden layers use ``activation`` (ReLU by default); the last layer is linear. Calling
    the MLP returns a single ``Value`` when the last layer has one output, else a list.

    Args:
        nin: number of inputs.
        nouts: layer widths, e.g. ``[16, 16, 1]``.
        activation: hidden-layer activation (``"relu"``, ``"leaky_relu"``, ``"tanh"``,
            ``"sigmoid"``, ``"linear"``).
        init: weight init for every layer, ``None`` for each layer's default.
        seed: one seed for the whole network; ``None`` draws one from Python's ``random``
            (so ``random.seed(1337)`` fixes the model, as in micrograd), or uses the
            package generator once ``arenagrad.manual_seed`` has been called.
        **kwargs: passed to every :class:`Neuron` (e.g. ``negative_slope``).
    """

    def __init__(
        self,
        nin: int,
        nouts: Sequence[int],
        *,
        activation: str = "relu",
        init: Optional[str] = None,
        seed: SeedLike = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        nouts = list(nouts)
        if not nouts:
            raise ValueError("nouts must list at least one layer width")
        check_activation(activation)
        if "nonlin" in kwargs:
            # micrograd's MLP decides nonlin per layer (all but the last); so does this one.
            raise TypeError("MLP sets nonlin per layer; choose the hidden activation with activation=")
        sizes = [nin] + nouts
        rng = rng_from(seed)
        self.layers: List[Layer] = [
            Layer(
                sizes[i],
                sizes[i + 1],
                activation=activation if i != len(nouts) - 1 else "linear",
                init=init,
                seed=rng,
                **kwargs,
            )
            for i in range(len(nouts))
        ]

    def forward(self, x: Any) -> Union[Value, List[Value]]:
        for layer in self.layers:
            x = layer(x)
        return x
