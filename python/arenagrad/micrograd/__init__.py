"""micrograd itself, on arenagrad's engine.

``from arenagrad.micrograd.engine import Value`` and ``from arenagrad.micrograd.nn
import Neuron, Layer, MLP, Module`` behave as micrograd 0.1.0's modules do: numbers
in an op become Value nodes (so they show in ``_prev`` and in drawings), ops carry
micrograd's names (``'ReLU'``, ``'**2'``), ``backward()`` adds into intermediate
gradients as micrograd's does, and models draw their weights with
``random.uniform(-1, 1)``, so ``random.seed`` gives micrograd's models. arenagrad's
extra ops (``exp``, ``log``, ``tanh``, ...) are there too.

``arenagrad.Value`` is the PyTorch-semantics version of the same engine; the
README's "micrograd code" section says where the two differ.
"""

from .engine import Value

__all__ = ["Value"]
