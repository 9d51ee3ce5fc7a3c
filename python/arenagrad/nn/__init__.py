"""Neural-network building blocks, shaped like ``torch.nn``, call-compatible with micrograd.

* :class:`Module`: parameters, ``zero_grad``, ``train``/``eval``, ``state_dict``, ``save``/``load``.
* micrograd's layers: :class:`Neuron`, :class:`Layer`, :class:`MLP`.
* torch's: :class:`Linear`, :class:`Sequential`, :class:`ReLU`, :class:`LeakyReLU`,
  :class:`Tanh`, :class:`Sigmoid`, :class:`Identity`.
* :mod:`arenagrad.nn.functional`: losses and elementwise activations.
* :mod:`arenagrad.nn.init`: the weight-initialisation schemes.
* :class:`CompiledStep`: a model and loss recorded once, replayed per batch.
"""

from . import functional, init
from .compiled import CompiledStep
from .activation import Identity, LeakyReLU, ReLU, Sigmoid, Tanh
from .container import Sequential
from .linear import Linear
from .mlp import MLP, Layer, Neuron
from .module import IncompatibleKeys, Module

__all__ = [
    "Module",
    "IncompatibleKeys",
    "Neuron",
    "Layer",
    "MLP",
    "Linear",
    "Sequential",
    "ReLU",
    "LeakyReLU",
    "Tanh",
    "Sigmoid",
    "Identity",
    "CompiledStep",
    "functional",
    "init",
]
