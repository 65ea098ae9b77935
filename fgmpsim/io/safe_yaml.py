"""The one YAML reader of fgmpsim (arch files, ``--set`` values, trace manifests, sweep specs, fitted map models).

Every YAML text a user can hand fgmpsim goes through :func:`parse_yaml` (or :func:`read_yaml_file`), which is
``yaml.SafeLoader`` (no object construction, no tags) with limits checked *before* the document is built:

* file size (:data:`MAX_YAML_BYTES`) and regular files only (a FIFO or device would block or never end);
* strict UTF-8 and no NUL bytes;
* nesting depth (:data:`MAX_DEPTH`): counted on the flat event stream, so a 100,000-level document never reaches
  the recursive composer;
* alias expansion (:data:`MAX_NODES`): the number of nodes the document has once every alias is expanded, counted
  on the composed graph with sharing (so a "billion laughs" bomb is measured, not expanded); recursive aliases
  are refused;
* integers of more than :data:`MAX_INT_DIGITS` digits (Python refuses to parse them above 4300 digits anyway);
* a key given twice in one mapping (YAML would silently keep the last).

It also reads ``1e9`` and ``3.9e-3`` as floats: PyYAML follows YAML 1.1, where an exponent needs a dot and a sign,
so ``1e9`` would otherwise be the *string* "1e9". Errors are the caller's typed error class (``ConfigError`` for
configs, ``TraceError`` for manifests, ...) and quote the problem and its line, never the document's content.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

import yaml

from fgmpsim.errors import ConfigError, FgmpsimError, excerpt

MAX_YAML_BYTES = 16 * 2**20
"""Largest YAML file read (16 MiB; the manifest of a Llama-2-70B synthetic trace is about 0.5 MiB)."""
MAX_DEPTH = 64
"""Deepest nesting of mappings and sequences (the deepest shipped document nests 4 levels)."""
MAX_NODES = 1_000_000
"""Most nodes a document may have after alias expansion (a 721-op manifest has about 20,000)."""
MAX_INT_DIGITS = 100
"""Longest integer literal read (no physical quantity of fgmpsim needs more than 19 digits)."""

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: 10x faster on manifests


class _Loader(_BaseLoader):  # type: ignore[misc, valid-type]
    """The safe loader with YAML 1.2-style exponent floats and a digit cap on integers."""

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        digits = sum(ch.isdigit() for ch in node.value)
        if digits > MAX_INT_DIGITS:
            raise yaml.constructor.ConstructorError(
                None, None, f"an integer of {digits} digits (at most {MAX_INT_DIGITS} are read)", node.start_mark)
        return super().construct_yaml_int(node)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key, _ in node.value:
            if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                if key.value in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"the key {excerpt(key.value)} appears twice in one mapping", key.start_mark)
                seen.add(key.value)
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))
_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)


def _fail(error: type[FgmpsimError], where: str, what: str, fix: str) -> FgmpsimError:
    return error(f"{where}: {what}", where, fix)


def _line(mark: Any) -> str:
    return f" at line {mark.line + 1}" if mark is not None else ""


def _check_events(text: str, where: str, error: type[FgmpsimError]) -> None:
    """Refuse too-deep nesting on the event stream (the parser is iterative; the composer is recursive)."""
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise _fail(error, where, f"nests deeper than {MAX_DEPTH} levels{_line(event.start_mark)}",
                            "flatten the document (no fgmpsim file nests that deep)")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def _expanded_nodes(root: yaml.Node, where: str, error: type[FgmpsimError]) -> int:
    """Nodes of the document with every alias expanded, counted once per distinct node (memoized), so the cost
    is linear in the text even when the expansion is exponential. A node reachable from itself is refused."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise _fail(error, where, f"has a recursive alias{_line(node.start_mark)}", "remove the self-reference")
        open_nodes.add(key)
        if isinstance(node, yaml.MappingNode):
            total = 1 + sum(size(k) + size(v) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total = 1 + sum(size(item) for item in node.value)
        else:
            total = 1
        open_nodes.discard(key)
        sizes[key] = total
        return total

    return size(root)


def parse_yaml(text: str | bytes, where: str, error: type[FgmpsimError] = ConfigError) -> Any:
    """``text`` parsed safely within the limits above; any problem raises ``error`` naming ``where``."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as err:
            raise _fail(error, where, f"is not UTF-8 text (bad byte at offset {err.start})",
                        "save the file as UTF-8") from None
    if "\x00" in text:
        raise _fail(error, where, f"contains a NUL byte (offset {text.index(chr(0))})",
                    "save the file as plain UTF-8 text") from None
    try:
        _check_events(text, where, error)
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            nodes = _expanded_nodes(node, where, error)
            if nodes > MAX_NODES:
                raise _fail(error, where, f"expands to {nodes:,} nodes through aliases (at most {MAX_NODES:,})",
                            "write the values out instead of nesting aliases")
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        problem = getattr(err, "problem", None) or type(err).__name__
        raise _fail(error, where, f"not valid YAML{_line(mark)}: {problem}", "fix the YAML syntax") from None
    except RecursionError:  # a guard: _check_events bounds the depth first
        raise _fail(error, where, "nests too deeply", "flatten the document") from None


def check_regular_file(path: Path, where: str, error: type[FgmpsimError], max_bytes: int) -> int:
    """The size of ``path`` if it is a regular file of at most ``max_bytes``, else ``error``; never opens it
    (opening a FIFO blocks until a writer appears)."""
    try:
        info = os.stat(path)
    except OSError as err:
        raise error(f"cannot read {str(path)!r}: {err.strerror}", where, "give an existing file") from None
    if not stat.S_ISREG(info.st_mode):
        raise error(f"{str(path)!r} is not a regular file (a directory, FIFO, socket or device)", where,
                    "give a regular file")
    if info.st_size > max_bytes:
        raise error(f"{str(path)!r} has {info.st_size:,} bytes, more than the {max_bytes:,} read", where,
                    "give the right file (fgmpsim's files are far smaller)")
    return info.st_size


def read_bounded(path: Path, where: str, error: type[FgmpsimError], max_bytes: int) -> bytes:
    """The bytes of regular file ``path`` (at most ``max_bytes``, checked before and while reading)."""
    size = check_regular_file(path, where, error, max_bytes)
    try:
        with open(path, "rb") as handle:
            data = handle.read(size + 1)  # the stat size, not the cap: read() allocates what it is asked for
    except OSError as err:
        raise error(f"cannot read {str(path)!r}: {err.strerror}", where, "give a readable file") from None
    if len(data) != size:
        raise error(f"{str(path)!r} changed size while being read", where, "give a file nothing is writing to")
    return data


def read_yaml_file(path: Path, where: str, error: type[FgmpsimError] = ConfigError,
                   max_bytes: int = MAX_YAML_BYTES) -> Any:
    """The YAML document in regular file ``path`` (see :func:`parse_yaml`)."""
    return parse_yaml(read_bounded(path, where, error, max_bytes), where, error)
