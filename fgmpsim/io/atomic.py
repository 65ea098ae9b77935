"""Atomic output files and output paths checked before the work that fills them.

Every result, trace and table fgmpsim writes goes to a fresh temporary file in the target's own directory (same
file system) that is renamed over the target only once it is complete, so a kill, a full disk or an exception
leaves the previous good file untouched and never a truncated one. :func:`check_output_file` and
:func:`check_output_dir` refuse a bad destination (a directory where a file is wanted, a path under a file, a
device, ``/proc``, an unwritable directory) *before* any simulation runs.
"""

from __future__ import annotations

import contextlib
import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

from fgmpsim.errors import FgmpsimError, excerpt

_SYSTEM_TREES = (Path("/proc"), Path("/sys"), Path("/dev"))


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """A temporary path next to ``target`` to write; renamed onto ``target`` when the block ends without error,
    deleted otherwise. The rename replaces a symlink at ``target`` rather than writing through it. The temporary
    name ends in ``target``'s suffix, so writers that pick a format from it (matplotlib, pandas) pick the right one."""
    tmp = target.parent / f".{target.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp{target.suffix}"
    try:
        yield tmp
        with open(tmp, "rb+") as handle:  # the bytes reach the disk before the name does
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` atomically (see :func:`atomic_path`); exclusive create of the temporary file."""
    with atomic_path(target) as tmp:
        with open(tmp, "xb") as handle:
            handle.write(data)


def _first_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_not_system(path: Path, field: str, error: type[FgmpsimError]) -> None:
    resolved = path.resolve()
    for tree in _SYSTEM_TREES:
        if resolved == tree or resolved.is_relative_to(tree):
            raise error(f"output {excerpt(str(path))} is in {tree}, a system tree, not a place for results", field,
                        "write to a directory of your own")


def _check_parent(directory: Path, field: str, error: type[FgmpsimError]) -> None:
    """``directory`` exists as a writable directory or can be created (its nearest existing ancestor is one)."""
    existing = _first_existing(directory)
    if not existing.is_dir():
        raise error(f"output directory {excerpt(str(directory))} is under {excerpt(str(existing))}, which is a "
                    "file", field, "choose a path whose parents are directories")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise error(f"cannot write in {excerpt(str(existing))} (permission denied)", field,
                    "choose a directory you can write to")


def _plain_path(path: str | os.PathLike[str], what: str, noun: str, field: str, error: type[FgmpsimError]) -> str:
    """``path`` as text if it is neither empty nor holds a NUL byte, else ``error`` naming ``field``; ``what`` is
    how the message calls the path, ``noun`` what the fix asks for."""
    text = os.fspath(path)
    if not text.strip():
        raise error(f"the output {what} is empty", field, f"give a {noun} name")
    if "\x00" in text:
        raise error(f"the output {what} contains a NUL byte", field, f"give a plain {noun} name")
    return text


def check_output_file(path: str | os.PathLike[str], field: str, error: type[FgmpsimError],
                      suffixes: tuple[str, ...] | None = None) -> Path:
    """``path`` as a :class:`Path` if a result file can be written there, else ``error`` naming ``field``."""
    text = _plain_path(path, "path", "file", field, error)
    target = Path(text)
    _check_not_system(target, field, error)
    if target.is_dir():
        raise error(f"output {excerpt(text)} is a directory", field, "give a file name inside it")
    if suffixes is not None and target.suffix.lower() not in suffixes:
        raise error(f"cannot write {excerpt(target.suffix or 'a file without suffix')}", field,
                    f"name the output file *{', *'.join(suffixes)}")
    if target.exists() and not stat.S_ISREG(os.stat(target).st_mode):
        raise error(f"output {excerpt(text)} exists and is not a regular file (a FIFO, socket or device)", field,
                    "give a regular file name")
    _check_parent(target.parent, field, error)
    return target


def check_output_dir(path: str | os.PathLike[str], field: str, error: type[FgmpsimError]) -> Path:
    """``path`` as a :class:`Path` if it is, or can be created as, a writable directory; else ``error``."""
    text = _plain_path(path, "directory", "directory", field, error)
    target = Path(text)
    _check_not_system(target, field, error)
    if target.exists() and not target.is_dir():
        raise error(f"output {excerpt(text)} exists and is not a directory", field, "give a directory name")
    _check_parent(target, field, error)
    return target
