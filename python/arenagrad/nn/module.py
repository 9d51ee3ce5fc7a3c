"""``Module``: the base class of every layer, with PyTorch's verbs.

What a module owns is read from its attributes, at the moment it is asked, so a
micrograd-style subclass that never calls ``super().__init__()`` works too:

* a ``Value``, a list of ``Value``\\ s, or a rectangular list of lists of ``Value``\\ s is a
  *parameter* of shape ``()``, ``(n,)`` or ``(m, n)`` (``Neuron.w``, ``Neuron.b``,
  ``Linear.weight``);
* a ``Module``, or a list of ``Module``\\ s, is a *submodule* (``MLP.layers`` is a list,
  its entries are named ``layers.0``, ``layers.1``, ...).

Attributes whose name starts with an underscore are private and never registered, so a
module can cache ``Value``\\ s (or anything else) there without making them parameters.

Parameters keep their identity for the life of the module: :meth:`Module.load_state_dict`
writes ``.data`` in place, so an optimizer built before a load keeps working.
"""

from __future__ import annotations

import errno
import functools
import io
import os
import tempfile
import zipfile
import zlib
from typing import Any, Callable, Dict, Iterator, List, Mapping, NamedTuple, Set, Tuple, TypeVar, Union

import numpy as np

from .. import _core
from .._core import Value

__all__ = ["Module", "IncompatibleKeys"]

# What a parameter attribute holds: one Value, a row of them, or rows of them.
ParamSlot = Union[Value, List[Value], List[List[Value]]]
PathLike = Union[str, "os.PathLike[str]"]
T = TypeVar("T")


class IncompatibleKeys(NamedTuple):
    """What :meth:`Module.load_state_dict` skipped with ``strict=False``."""

    missing_keys: List[str]
    unexpected_keys: List[str]


# _members() tags each registered attribute with its kind: a parameter slot's shape
# (a tuple), or one of these two strings.
_MODULE = "module"
_MODULES = "modules"
_VALUE_TYPE = {Value}
_PLAIN_TYPES = frozenset({bool, int, float, str, type(None)})


def _kind(obj: Any) -> Union[Tuple[int, ...], str, None]:
    """What ``obj`` is to a module: a slot shape, ``_MODULE``, ``_MODULES`` or ``None``.

    Called for every attribute on every ``parameters()``, hence the type checks before
    isinstance and the C-level ``set(map(type, ...))`` scans.
    """
    t = type(obj)
    if t is Value:
        return ()
    if t is list:
        if not obj:
            return None
        first = obj[0]
        if type(first) is Value:
            return (len(obj),) if set(map(type, obj)) == _VALUE_TYPE else None
        if type(first) is list:
            n = len(first)
            if n and all(type(r) is list and len(r) == n for r in obj):
                if all(set(map(type, r)) == _VALUE_TYPE for r in obj):
                    return (len(obj), n)
            return None
        if isinstance(first, Module) and all(isinstance(m, Module) for m in obj):
            return _MODULES
        return None
    if isinstance(obj, Module):
        return _MODULE
    return None


def _flat(slot: ParamSlot, ndim: int) -> List[Value]:
    """The Values of a slot in row-major order."""
    if ndim == 0:
        return [slot]  # type: ignore[list-item]
    if ndim == 1:
        return slot  # type: ignore[return-value]
    return [v for row in slot for v in row]  # type: ignore[union-attr]


@functools.cache
def _suffixes(shape: Tuple[int, ...]) -> List[str]:
    """What each Value of a slot adds to the slot's name: ``""``, ``".i"`` or ``".i.j"``."""
    if not shape:
        return [""]
    if len(shape) == 1:
        return [f".{i}" for i in range(shape[0])]
    return [f".{i}.{j}" for i in range(shape[0]) for j in range(shape[1])]


def _children(members: List[Tuple[str, Any, Any]]) -> Iterator[Tuple[str, Module]]:
    """The submodules among a module's members, named ``"name"`` or ``"name.i"``."""
    for name, kind, value in members:
        if kind is _MODULE:
            yield name, value
        elif kind is _MODULES:
            for i, m in enumerate(value):
                yield f"{name}.{i}", m


def _first_of_each(items: List[T], key: Callable[[T], int]) -> List[T]:
    """``items`` without those whose ``key`` an earlier item had (the first one stays)."""
    keys = list(map(key, items))
    if len(set(keys)) == len(keys):
        return items  # the usual case, decided in C
    seen: Set[int] = set()
    return [item for item, k in zip(items, keys) if not (k in seen or seen.add(k))]  # type: ignore[func-returns-value]


def _key_mismatch(missing: List[str], unexpected: List[str]) -> str:
    """``missing key(s) 'a', 'b'; unexpected key(s) 'c'``, naming what is there."""
    return "; ".join(
        f"{what} key(s) " + ", ".join(repr(k) for k in keys)
        for what, keys in (("missing", missing), ("unexpected", unexpected))
        if keys
    )


class Module:
    """Base class for all neural network modules, as ``torch.nn.Module``.

    Subclasses assign parameters and submodules as attributes in ``__init__`` and
    implement :meth:`forward`; calling the module calls its class's ``forward`` (there
    are no hooks)::

        class TwoLayer(nn.Module):
            def __init__(self):
                super().__init__()
                self.hidden = nn.Linear(2, 8)
                self.out = nn.Linear(8, 1)

            def forward(self, x):
                return self.out(nn.functional.relu(self.hidden(x)))[0]

    A micrograd-style subclass, with ``__call__`` (and perhaps ``parameters()``) of its
    own and no ``super().__init__()``, works as well.
    """

    # A class attribute, so subclasses that skip super().__init__() still have it.
    training: bool = True

    def __init__(self) -> None:
        self.training = True

    # ------------------------------------------------------------------ calling

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Compute the module's output; every subclass defines it."""
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # There are no hooks to run around forward, so calling a module *is* calling its
        # forward: a subclass that defines forward gets it as __call__ too, which saves
        # one Python frame and an *args/**kwargs repack per call (an MLP call is one
        # per layer per sample). A subclass that writes __call__ itself (micrograd
        # style) keeps it.
        super().__init_subclass__(**kwargs)
        if "forward" in cls.__dict__ and "__call__" not in cls.__dict__:
            cls.__call__ = cls.__dict__["forward"]  # type: ignore[method-assign]

    # ---------------------------------------------------------------- structure

    def _members(self) -> List[Tuple[str, Any, Any]]:
        """``(name, kind, value)`` for each public attribute that is registered.

        ``kind`` is the slot shape (a tuple) for a parameter, ``"module"`` for a
        submodule, ``"modules"`` for a list of them.
        """
        out = []
        for name, value in vars(self).items():
            # Plain attributes (flags, sizes, names) are by far the most common: skip
            # them before calling _kind.
            if name[0] == "_" or type(value) in _PLAIN_TYPES:
                continue
            kind = _kind(value)
            if kind is not None:
                out.append((name, kind, value))
        return out

    def named_children(self) -> Iterator[Tuple[str, Module]]:
        """Direct submodules with their names (``"layers.0"`` for list entries)."""
        return _children(self._members())

    def children(self) -> Iterator[Module]:
        """Direct submodules."""
        for _, m in self.named_children():
            yield m

    def _walk(self, prefix: str = "") -> Iterator[Tuple[str, Module, List[Tuple[str, Any, Any]]]]:
        """This module and every one below it, once each, depth first: name, module, members.

        The one walk of the tree: each module's attributes are read once per walk, and an
        explicit stack keeps a deep Sequential off the recursion limit.
        """
        seen: Set[int] = set()
        stack: List[Tuple[str, Module]] = [(prefix, self)]
        while stack:
            name, m = stack.pop()
            if id(m) in seen:
                continue
            seen.add(id(m))
            members = m._members()
            yield name, m, members
            kids = [(f"{name}.{n}" if name else n, c) for n, c in _children(members)]
            stack.extend(reversed(kids))

    def named_modules(self, prefix: str = "") -> Iterator[Tuple[str, Module]]:
        """This module (named ``prefix``) and every submodule below it, each once, depth first."""
        for name, m, _ in self._walk(prefix):
            yield name, m

    def modules(self) -> Iterator[Module]:
        """This module and every submodule below it, in the order of :meth:`named_modules`."""
        for _, m, _ in self._walk():
            yield m

    def _named_slots(self) -> Iterator[Tuple[str, ParamSlot, Tuple[int, ...]]]:
        """Every parameter slot with its dotted name and shape, in definition order."""
        for prefix, _, members in self._walk():
            for name, kind, value in members:
                if type(kind) is tuple:
                    yield (f"{prefix}.{name}" if prefix else name), value, kind

    def named_parameters(self) -> Iterator[Tuple[str, Value]]:
        """Every parameter ``Value`` with a name such as ``"layers.0.neurons.3.w.1"``.

        A ``Value`` shared by two slots is listed once, under its first name.
        """
        pairs = [
            (name + suffix, v)
            for name, slot, shape in self._named_slots()
            for suffix, v in zip(_suffixes(shape), _flat(slot, len(shape)))
        ]
        return iter(_first_of_each(pairs, lambda pair: id(pair[1])))

    def parameters(self) -> List[Value]:
        """All parameters as a list, in micrograd's order (``w`` then ``b``, neuron by neuron).

        A ``Value`` shared by several slots or modules is listed once.
        """
        values = [v for _, slot, shape in self._named_slots() for v in _flat(slot, len(shape))]
        return _first_of_each(values, id)

    # ----------------------------------------------------------------- training

    def zero_grad(self) -> None:
        """Set every parameter's ``.grad`` to 0 (leaf gradients accumulate across backward calls)."""
        _core._scatter(self.parameters(), "grad", 0.0)

    def train(self, mode: bool = True) -> Module:
        """Set ``training`` on this module and every submodule; returns ``self``."""
        if not isinstance(mode, bool):
            raise TypeError(f"train(mode) expects a bool, got {type(mode).__name__}")
        for m in self.modules():
            m.training = mode
        return self

    def eval(self) -> Module:
        """Same as ``train(False)``."""
        return self.train(False)

    # -------------------------------------------------------------- persistence

    def state_dict(self) -> Dict[str, np.ndarray]:
        """A copy of every parameter slot as a float64 array of the slot's shape.

        Keys are dotted paths (``"layers.0.neurons.3.w"``, ``"0.weight"``); a neuron's
        ``w`` is a vector, a ``Linear``'s ``weight`` an ``(out, in)`` matrix, a bias a
        0-d array or a vector.
        """
        sd: Dict[str, np.ndarray] = {}
        for name, slot, shape in self._named_slots():
            flat = _flat(slot, len(shape))
            sd[name] = np.array([v.data for v in flat], dtype=np.float64).reshape(shape)
        return sd

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy values from ``state_dict`` into the parameters, in place.

        Everything is checked before anything is written, so on error the module is
        left exactly as it was.

        Args:
            state_dict: name -> array-like of real numbers, as :meth:`state_dict` returns.
            strict: require exactly this module's keys (else missing and unexpected keys
                are skipped and returned).

        Raises:
            KeyError: ``strict`` and a key is missing or unexpected (the message names it).
            ValueError: an entry has the wrong shape or is not an array of real numbers.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"state_dict must be a mapping of name -> array, got {type(state_dict).__name__}")
        slots = list(self._named_slots())
        own = {name for name, _, _ in slots}
        missing = [name for name, _, _ in slots if name not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            raise KeyError(f"load_state_dict for {type(self).__name__}: " + _key_mismatch(missing, unexpected))

        updates: List[Tuple[List[Value], List[float]]] = []
        for name, slot, shape in slots:
            if name not in state_dict:
                continue
            raw = state_dict[name]
            try:
                arr = np.asarray(raw)
            except Exception as e:  # ragged lists and the like
                raise ValueError(f"state_dict[{name!r}] is not an array of numbers: {e}") from e
            if arr.dtype == np.bool_ or not (
                np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
            ):
                raise ValueError(f"state_dict[{name!r}] must hold real numbers, got dtype {arr.dtype}")
            if arr.shape != shape:
                raise ValueError(f"state_dict[{name!r}] has shape {arr.shape}, the parameter has shape {shape}")
            updates.append((_flat(slot, len(shape)), arr.astype(np.float64).ravel().tolist()))

        # Nothing below can fail: assigning a float to .data.
        for values, numbers in updates:
            for v, x in zip(values, numbers):
                v.data = x
        return IncompatibleKeys(missing, unexpected)

    def save(self, path: PathLike) -> None:
        """Write :meth:`state_dict` to ``path`` as an ``.npz`` archive (no pickles).

        The file is written next to ``path`` and renamed over it, so an interrupted save
        never leaves a half-written checkpoint behind. The name is used as given (numpy's
        habit of appending ``.npz`` is avoided).

        Raises:
            FileNotFoundError: the directory of ``path`` does not exist.
            IsADirectoryError: ``path`` is a directory.
            OSError: anything else the file system refuses; every error names ``path``
                (never the temporary file).
        """
        path = os.fspath(path)
        if os.path.isdir(path):
            raise IsADirectoryError(errno.EISDIR, "cannot save a checkpoint over a directory", path)
        directory = os.path.dirname(os.path.abspath(path))
        try:
            fd, tmp = tempfile.mkstemp(prefix=".arenagrad-", suffix=".npz.tmp", dir=directory)
        except OSError as err:
            # OSError(errno, ...) builds the matching subclass (FileNotFoundError, ...).
            raise OSError(err.errno, f"cannot save a checkpoint in {directory!r}: {err.strerror}", path) from None
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **self.state_dict())
            os.replace(tmp, path)
        except BaseException as err:
            if os.path.exists(tmp):
                os.unlink(tmp)
            if isinstance(err, OSError) and err.errno is not None:
                raise OSError(err.errno, f"cannot save a checkpoint: {err.strerror}", path) from None
            raise

    def load(self, path: PathLike, strict: bool = True) -> IncompatibleKeys:
        """Load parameters saved by :meth:`save`; the module is unchanged if anything is wrong.

        The archive is checked before anything in it is decompressed: its member names
        against this module's parameters, and each member's ``.npy`` header (dtype, shape)
        and declared size against the parameter it is meant for. A file therefore cannot
        make ``load`` allocate more than the module's own parameters take, whatever it
        claims to hold. Only then are the arrays read (never with pickles).

        Raises:
            FileNotFoundError: ``path`` does not exist.
            IsADirectoryError: ``path`` is a directory.
            ValueError: the file is not an ``.npz`` archive of real-number arrays
                (corrupted, pickled objects, a lone ``.npy``, another format), or its
                entries do not match this module's parameters (names, dtypes, shapes,
                sizes). The message names the file and the problem.
        """
        path = os.fspath(path)
        if not os.path.exists(path):
            raise FileNotFoundError(errno.ENOENT, "no such checkpoint", path)
        if os.path.isdir(path):
            raise IsADirectoryError(errno.EISDIR, "a checkpoint is a file, not a directory", path)
        shapes = {name: shape for name, _, shape in self._named_slots()}
        sd, unexpected = _read_checkpoint(path, shapes, strict, type(self).__name__)
        try:
            missing = self.load_state_dict(sd, strict=strict).missing_keys
            return IncompatibleKeys(missing, unexpected)
        except KeyError as e:  # pragma: no cover - _read_checkpoint checked the keys
            raise ValueError(f"{path!r} does not match this {type(self).__name__}: {e.args[0]}") from e
        except ValueError as e:  # pragma: no cover - and the dtypes and shapes
            raise ValueError(f"{path!r} does not match this {type(self).__name__}: {e}") from e

    # --------------------------------------------------------------------- repr

    def extra_repr(self) -> str:
        """The text between the parentheses of ``repr``; subclasses describe their shape here."""
        return ""

    def __repr__(self) -> str:
        # torch's layout: extra_repr first, then one "(name): child" block per child,
        # each block indented two spaces inside the parentheses.
        blocks: List[str] = []
        extra = self.extra_repr()
        for name, kind, value in self._members():
            if kind is _MODULE:
                blocks.append(f"({name}): {value!r}")
            elif kind is _MODULES:
                entries = "".join("\n  " + _indent(line) for line in _list_lines(value))
                blocks.append(f"({name}): [{entries}\n]")
        if not blocks:
            return f"{type(self).__name__}({extra})"
        if extra:
            blocks.insert(0, extra)
        body = "".join("\n  " + _indent(b) for b in blocks)
        return f"{type(self).__name__}({body}\n)"

    def _repr_html_(self) -> str:
        # Notebooks show a module as its summary table: layers, shapes, counts, grad norms.
        from .summary import summary

        return summary(self)._repr_html_()


# ------------------------------------------------------------------ checkpoint reading

_NPY_MAGIC = b"\x93NUMPY"
# The longest .npy header accepted: numpy writes well under 200 bytes for a plain array
# and refuses headers over 10,000 bytes by default when it loads them.
_MAX_NPY_HEADER = 10_000
# What reading a damaged archive raises, besides ValueError: BadZipFile for a bad CRC
# or directory, EOFError/zlib.error for a truncated or corrupt stream,
# NotImplementedError for an unknown compression, RuntimeError for encryption.
_READ_ERRORS = (ValueError, EOFError, zlib.error, zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError)


def _not_a_checkpoint(path: str, why: str) -> ValueError:
    return ValueError(f"{path!r} is not an arenagrad checkpoint (.npz archive): {why}")


def _read_checkpoint(
    path: str, shapes: Mapping[str, Tuple[int, ...]], strict: bool, owner: str
) -> Tuple[Dict[str, np.ndarray], List[str]]:
    """The arrays of the ``.npz`` at ``path`` that ``shapes`` asks for, checked first,
    and the names of the entries it did not ask for (never read).

    Names, dtypes, shapes and the sizes the zip directory declares are all checked from
    the zip directory and the ``.npy`` headers (a few hundred bytes per member) before
    any array is read; every error is a ValueError naming ``path``.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(len(_NPY_MAGIC))
    except OSError as err:
        raise OSError(err.errno, f"cannot read checkpoint: {err.strerror}", path) from None
    if head == _NPY_MAGIC:
        raise _not_a_checkpoint(path, "it holds a single .npy array")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, EOFError, ValueError, OSError) as err:
        raise _not_a_checkpoint(
            path, "not a zip archive" if head[:2] != b"PK" else f"a damaged zip archive ({err})"
        ) from None
    with zf:
        members: Dict[str, zipfile.ZipInfo] = {}
        for info in zf.infolist():
            key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            if key in members:
                raise _not_a_checkpoint(path, f"the entry {key!r} is stored twice")
            members[key] = info
        missing = [k for k in shapes if k not in members]
        unexpected = [k for k in members if k not in shapes]
        if strict and (missing or unexpected):
            raise ValueError(f"{path!r} does not match this {owner}: " + _key_mismatch(missing, unexpected))
        wanted = [(k, members[k]) for k in shapes if k in members]

        # Every header first, so nothing is decompressed past a header if any is wrong.
        for key, info in wanted:
            _check_member(path, zf, key, info, shapes[key])
        sd: Dict[str, np.ndarray] = {}
        for key, info in wanted:
            try:
                with zf.open(info) as f:
                    sd[key] = np.lib.format.read_array(f, allow_pickle=False)
            except _READ_ERRORS as err:
                raise ValueError(
                    f"{path!r} is a damaged checkpoint: reading the entry {key!r} failed ({type(err).__name__}: {err})"
                ) from None
    return sd, unexpected


def _check_member(path: str, zf: zipfile.ZipFile, key: str, info: zipfile.ZipInfo, shape: Tuple[int, ...]) -> None:
    """Check one member's ``.npy`` header and declared size against the parameter's shape."""
    what = f"{path!r}: the entry {key!r}"
    if info.flag_bits & 0x1:
        raise ValueError(f"{what} is encrypted")
    count = int(np.prod(shape, dtype=np.int64))
    try:
        # At most the longest header is decompressed (the stream is inflated lazily),
        # whatever the member claims, and the header is parsed from that copy.
        with zf.open(info) as f:
            head = io.BytesIO(f.read(_MAX_NPY_HEADER + 16))
        version = np.lib.format.read_magic(head)
        if version == (1, 0):
            got, _, dtype = np.lib.format.read_array_header_1_0(head)
        elif version == (2, 0):
            got, _, dtype = np.lib.format.read_array_header_2_0(head)
        else:
            raise ValueError(f"unsupported .npy format version {version[0]}.{version[1]}")
        header_bytes = head.tell()
    except _READ_ERRORS as err:
        raise ValueError(f"{what} is not a readable .npy array ({err})") from None
    # Real numbers only (as load_state_dict): no objects (pickles), records, bools, complex.
    if dtype.hasobject or dtype.names is not None or dtype.kind not in ("f", "i", "u"):
        raise ValueError(f"{what} has dtype {dtype}; a checkpoint holds real numbers (float64)")
    if tuple(got) != tuple(shape):
        raise ValueError(f"{what} has shape {tuple(got)}, the parameter has shape {tuple(shape)}")
    expected = header_bytes + dtype.itemsize * count
    if info.file_size != expected:
        raise ValueError(
            f"{what} declares {info.file_size} bytes, but its header ({dtype}, shape "
            f"{tuple(got)}) makes it {expected}: "
            + ("a damaged or hostile archive (zip bomb?)" if info.file_size > expected else "the entry is truncated")
        )


def _indent(text: str) -> str:
    """Indent every line but the first by two spaces (the caller places the first)."""
    return text.replace("\n", "\n  ")


def _list_lines(modules: List[Module]) -> List[str]:
    """``(i): repr`` per entry, with runs of identical entries folded as torch's ModuleList does."""
    reprs = [repr(m) for m in modules]
    lines = []
    i = 0
    while i < len(reprs):
        j = i
        while j + 1 < len(reprs) and reprs[j + 1] == reprs[i]:
            j += 1
        if j > i:
            lines.append(f"({i}-{j}): {j - i + 1} x {reprs[i]}")
        else:
            lines.append(f"({i}): {reprs[i]}")
        i = j + 1
    return lines
