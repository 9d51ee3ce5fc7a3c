"""Read the AddressSanitizer/UBSan logs of a test run and fail on any report
that concerns arenagrad's C++.

Python and the tools it starts (git, for one) leave allocations at exit that
LeakSanitizer reports; they are not ours. A report counts when it is an
ASan error of any kind, a UBSan runtime error, or a leak whose allocation
stack passes through the engine (cpp/ sources or the _core extension),
except pybind11's records of the module's functions: those belong to the
Python function objects, which CPython need not free at exit (a function
held by a class attribute, for one, outlives finalization).

    python .ci/sanitizer_report.py LOG_PREFIX
"""

from __future__ import annotations

import glob
import re
import sys

OURS = re.compile(r"/cpp/|_core\.cpython")
FUNCTION_RECORD = re.compile(r"pybind11::cpp_function::|in cpp_function<|process_attribute")


def blocks(text: str):
    """Split a LeakSanitizer report into its 'leak of' blocks."""
    block: list[str] = []
    for line in text.splitlines():
        if re.match(r"(Direct|Indirect) leak of", line):
            if block:
                yield block
            block = [line]
        elif block:
            block.append(line)
    if block:
        yield block


def main(prefix: str) -> int:
    logs = sorted(glob.glob(prefix + ".*"))
    problems = []
    for path in logs:
        text = open(path, errors="replace").read()
        if "ERROR: AddressSanitizer" in text or "runtime error:" in text:
            problems.append((path, text[:4000]))
            continue
        for b in blocks(text):
            if any(OURS.search(line) for line in b) and not any(FUNCTION_RECORD.search(line) for line in b):
                problems.append((path, "\n".join(b[:40])))
    for path, excerpt in problems:
        print(f"--- {path}\n{excerpt}\n")
    print(f"sanitizers: {len(logs)} log(s) read, {len(problems)} report(s) concerning arenagrad")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
