"""``Sequential``: modules applied one after the other."""

from __future__ import annotations

from typing import Any, Iterator, Union, overload

from .module import Module

__all__ = ["Sequential"]


class Sequential(Module):
    """A chain of modules, as ``torch.nn.Sequential``: ``Sequential(a, b)(x) == b(a(x))``.

    The modules are named ``"0"``, ``"1"``, ... (so state_dict keys read ``"0.weight"``),
    and the container can be indexed, sliced, iterated and measured with ``len``.
    """

    def __init__(self, *modules: Module) -> None:
        super().__init__()
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise TypeError(f"Sequential argument {i} is {type(m).__name__}, not a Module")
            # Digit names are not identifiers, but they are valid instance-dict keys,
            # which is all the attribute-based registration needs.
            setattr(self, str(i), m)

    def _layers(self) -> list:
        return [m for _, m in self.named_children()]

    def forward(self, x: Any) -> Any:
        for m in self._layers():
            x = m(x)
        return x

    def __len__(self) -> int:
        return len(self._layers())

    def __iter__(self) -> Iterator[Module]:
        return iter(self._layers())

    @overload
    def __getitem__(self, idx: int) -> Module: ...

    @overload
    def __getitem__(self, idx: slice) -> Sequential: ...

    def __getitem__(self, idx: Union[int, slice]) -> Union[Module, Sequential]:
        layers = self._layers()
        if isinstance(idx, slice):
            return Sequential(*layers[idx])
        return layers[idx]

    def append(self, module: Module) -> Sequential:
        """Add ``module`` at the end; returns ``self``."""
        if not isinstance(module, Module):
            raise TypeError(f"Sequential.append expects a Module, got {type(module).__name__}")
        setattr(self, str(len(self)), module)
        return self
