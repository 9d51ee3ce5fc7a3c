"""Where a command writes: the output directory and its files, checked before any work.

A run that trains for a minute and then cannot write its pictures has wasted the minute,
so the directory is created and probed first and every file the run plans to write is
checked; a write that still fails later is one line (an :class:`~arenagrad.options.OptionError`),
not a traceback.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator, Sequence

from .options import OptionError

__all__ = ["prepare_out", "check_writable", "writing"]


def prepare_out(out: str) -> Path:
    """Create the directory ``out`` and check that a file can be written there.

    Raises:
        OptionError: it cannot be created, or written to.
    """
    path = Path(out)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".arenagrad-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise OptionError(f"cannot write to output directory {out!r}: {err.strerror or err}") from None
    return path


def check_writable(paths: Sequence[Path]) -> None:
    """Refuse, before any work, files that exist and cannot be written over.

    Raises:
        OptionError: one of ``paths`` is a directory, or an existing file without write
            permission.
    """
    for path in paths:
        if path.is_dir():
            raise OptionError(f"cannot write {str(path)!r}: it is a directory")
        if path.exists() and not os.access(path, os.W_OK):
            raise OptionError(f"cannot write {str(path)!r}: permission denied")


@contextlib.contextmanager
def writing() -> Iterator[None]:
    """A file that cannot be written inside the block is an OptionError (one line)."""
    try:
        yield
    except OSError as err:
        where = f" {str(err.filename)!r}" if err.filename else ""
        raise OptionError(f"cannot write{where}: {err.strerror or err}") from None
