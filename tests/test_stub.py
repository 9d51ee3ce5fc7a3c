"""The compiled module's type stub (generated at build time from cpp/_core.pyi.in
and the op table) agrees with the module itself, as mypy's stubtest sees it."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

from arenagrad import _core

ROOT = pathlib.Path(__file__).resolve().parents[1]
STUB = pathlib.Path(_core.__file__).with_name("_core.pyi")


def stubtest(stub_text: str, folder: pathlib.Path) -> subprocess.CompletedProcess:
    """Runs stubtest on arenagrad._core against `stub_text`. The stub is put on
    MYPYPATH: in an editable install the package's py.typed and the built stub
    lie in different folders, and mypy would then skip the module and report
    success having checked nothing."""
    stubs = folder / "stubs" / "arenagrad"
    stubs.mkdir(parents=True)
    (stubs / "__init__.pyi").write_text("")
    (stubs / "_core.pyi").write_text(stub_text)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy.stubtest",
            "arenagrad._core",
            "--concise",
            "--allowlist",
            str(ROOT / "cpp" / "stubtest_allowlist.txt"),
        ],
        cwd=folder,  # no mypy config of the checkout, and its cache stays out of the checkout
        env={**os.environ, "MYPYPATH": str(folder / "stubs")},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_stubtest_finds_no_drift(tmp_path):
    proc = stubtest(STUB.read_text(), tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_stubtest_sees_a_method_missing_from_the_stub(tmp_path):
    # The check above is not vacuous: a stub that lost one method fails it.
    text = STUB.read_text()
    assert "def tanh(" in text
    proc = stubtest(text.replace("def tanh(", "def tanh_renamed("), tmp_path)
    assert proc.returncode != 0
    assert "arenagrad._core.Value.tanh is not present in stub" in proc.stdout, proc.stdout


def test_stub_names_every_op_method():
    text = STUB.read_text()
    methods = [op["method"] for op in _core.ops() if op["method"]]
    assert len(methods) > 10
    missing = [name for name in methods if f"def {name}(" not in text]
    assert not missing, f"not in {STUB}: {missing}"


def _split_top_level(text):
    """Splits a parameter list at commas outside brackets."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += ch in "[(" and 1 or ch in "])" and -1 or 0
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return [p.strip() for p in parts + [cur] if p.strip()]


def bound_parameters(fn):
    """The parameter names pybind11 writes in a bound function's signature line,
    or None where it has none (slot wrappers, overloads)."""
    first = (getattr(fn, "__doc__", None) or "").splitlines()[:1]
    name = getattr(fn, "__name__", "")
    if not first or not first[0].startswith(name + "(") or "->" not in first[0]:
        return None
    inner = first[0][len(name) + 1 : first[0].rindex(")", 0, first[0].index("->"))]
    return [p.split(":")[0].split("=")[0].strip().lstrip("*") for p in _split_top_level(inner)]


def stub_parameters():
    """{(class or '', function): parameter names} from the stub."""
    import ast

    found = {}
    for node in ast.parse(STUB.read_text()).body:
        scope = [(node.name, d) for d in node.body] if isinstance(node, ast.ClassDef) else [("", node)]
        for owner, fn in scope:
            if isinstance(fn, ast.FunctionDef) and not any(
                isinstance(d, ast.Name) and d.id in ("property", "overload") for d in fn.decorator_list
            ):
                a = fn.args
                found[owner, fn.name] = [p.arg for p in a.posonlyargs + a.args + a.kwonlyargs] + (
                    [a.vararg.arg] if a.vararg else []
                )
    return found


def test_stub_parameters_match_the_bound_functions():
    # stubtest cannot read pybind11's signatures, so it misses a parameter added
    # in C++ and not in the stub; pybind11's own signature line has them.
    checked, drift = 0, []
    for (owner, name), params in stub_parameters().items():
        fn = getattr(getattr(_core, owner) if owner else _core, name, None)
        bound = bound_parameters(fn) if fn is not None else None
        if bound is None:
            continue
        checked += 1
        if bound != params:
            drift.append(f"{owner}.{name}: module {bound}, stub {params}")
    assert checked > 20
    assert not drift, "\n".join(drift)
