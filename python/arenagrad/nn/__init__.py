"""Neural-network building blocks, shaped like ``torch.nn``, call-compatible with micrograd.

* :class:`Module`: parameters, ``zero_grad``, ``train``/``eval``, ``state_dict``, ``save``/``load``.
* micrograd's layers: :class:`Neuron`, :class:`Layer`, :class:`MLP`.
* torch's: :class:`Linear`, :class:`Sequential`, :class:`ReLU`, :class:`LeakyReLU`,
  :class:`Tanh`, :class:`Sigmoid`, :class:`Identity`.
* :mod:`arenagrad.nn.functional`: losses and elementwise activations.
* :data:`LOSSES` (:mod:`arenagrad.nn.loss`): the losses by name, with the targets each reads.
* :data:`ACTIVATIONS` (:mod:`arenagrad.nn.activation`): the activations a layer takes, by name.
* :mod:`arenagrad.nn.init`: the weight-initialisation schemes.
* :class:`CompiledStep`: a model and loss recorded once, replayed per batch;
  :class:`CompiledForward` the same for the model alone.
* :func:`summary`: a model as a table (layers, shapes, parameter counts, gradient norms),
  which is also how a module displays in a notebook.
"""

from . import functional, init
from .activation import ACTIVATIONS, Identity, LeakyReLU, ReLU, Sigmoid, Tanh
from .compiled import CompiledForward, CompiledStep
from .container import Sequential
from .linear import Linear
from .loss import LOSSES, Loss
from .mlp import MLP, Layer, Neuron
from .module import IncompatibleKeys, Module
from .summary import ModelSummary, summary

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
    "CompiledForward",
    "Loss",
    "LOSSES",
    "ACTIVATIONS",
    "functional",
    "init",
    "summary",
    "ModelSummary",
]
