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
