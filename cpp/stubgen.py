"""Writes arenagrad's _core.pyi: the template with the built module's op methods.

    python stubgen.py BUILT_MODULE TEMPLATE OUT

Run by CMake after the extension is built, so that the stub's Value methods
come from the same op table (cpp/ops.hpp) as the methods themselves.
"""

import importlib.machinery
import importlib.util
import sys


def load(path: str):
    loader = importlib.machinery.ExtensionFileLoader("_core", path)
    spec = importlib.util.spec_from_file_location("_core", path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def op_methods(core) -> str:
    lines = []
    for op in core.ops():
        if op["method"] is None:
            continue
        param = ""
        if op["param"] is not None:
            name, default = op["param"]
            param = f", {name}: _Number = {default!r}"
        lines.append(f'    def {op["method"]}(self{param}) -> "Value": ...  # {op["doc"]}')
    return "\n".join(lines)


def main(built: str, template: str, out: str) -> None:
    with open(template) as f:
        text = f.read()
    if "@OP_METHODS@" not in text:
        sys.exit(f"stubgen: {template} has no @OP_METHODS@ line")
    text = text.replace("@OP_METHODS@", op_methods(load(built)))
    with open(out, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main(*sys.argv[1:])
