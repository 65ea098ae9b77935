"""On-disk form of a :class:`~fgmpsim.trace.record.Trace`: ``<dir>/manifest.yaml`` + ``<dir>/maps.npz``.

``manifest.yaml`` (human-readable head first): ``format_version``, ``name``, ``block_size``, ``maps_sha256``,
``meta`` (the exporter's descriptive head, carried verbatim), then ``ops``: one dict per GEMM with ``name, layer,
kind, m, k, n, repeat, static_weight, consumer, consumer_operand`` and, per map, either
``{npz: KEY, shape: [...]}`` (bits in ``maps.npz``) or ``{lazy: {generator: NAME, ...}}`` (a generator spec from
``LazyMap.to_manifest()``).

``maps.npz`` (``np.savez_compressed``) holds each stored map bit-packed along its last axis (``np.packbits``,
``uint8``); its true shape is in the manifest, and ``maps_sha256`` pins the file's bytes (a maps.npz from another
save is refused). Maps with identical bits are stored once; on loading, ops that shared a map share one array
(and equal lazy specs one object), so consumers may cache by identity.
Loading trusts nothing: every field, shape and key is checked and errors name the op and field.
"""

from __future__ import annotations

import hashlib
import io
import os
import uuid
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from fgmpsim.errors import TraceError
from fgmpsim.resources import resolve_trace_dir, shipped_traces
from fgmpsim.trace.record import TRACE_FORMAT_VERSION, GemmOp, LazyMap, PrecisionMap, Trace
from fgmpsim.trace.synthetic_map import GENERATOR as SYNTHETIC_GENERATOR
from fgmpsim.trace.synthetic_map import SyntheticMap

MANIFEST = "manifest.yaml"
MAPS = "maps.npz"

LAZY_GENERATORS: dict[str, Callable[[dict[str, Any]], LazyMap]] = {
    SYNTHETIC_GENERATOR: SyntheticMap.from_manifest,
}
"""Lazy-map generators the loader can rebuild, by the ``generator`` name in their manifest spec."""

_MAP_FIELDS = ("weight_map", "act_map")
_OP_FIELDS: dict[str, type | tuple[type, ...]] = {
    "name": str, "layer": int, "kind": str, "m": int, "k": int, "n": int, "repeat": int, "static_weight": bool,
}
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_YAML_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_REEXPORT = "re-export or re-synthesize the trace"


def save_trace(trace: Trace, path: str | os.PathLike[str]) -> Path:
    """Write ``trace`` to the directory ``path`` (created if needed) and return it.

    Only ``path/manifest.yaml`` and ``path/maps.npz`` are written (each via a temporary file in ``path`` and an
    atomic rename, which replaces a symlink rather than writing through it). The trace is checked first.
    """
    trace.check()
    directory = Path(path)
    if directory.exists() and not directory.is_dir():
        raise TraceError(f"{directory} exists and is not a directory", "path", "give a directory for the trace")
    directory.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    keys_by_digest: dict[bytes, str] = {}
    ops = []
    for op in trace.ops:
        entry: dict[str, Any] = {"name": op.name, "layer": int(op.layer), "kind": op.kind, "m": int(op.m),
                                 "k": int(op.k), "n": int(op.n), "repeat": int(op.repeat),
                                 "static_weight": bool(op.static_weight), "consumer": op.consumer,
                                 "consumer_operand": op.consumer_operand}
        for field in _MAP_FIELDS:
            entry[field] = _map_entry(getattr(op, field), f"op {op.name!r}", field, arrays, keys_by_digest)
        ops.append(entry)
    packed = io.BytesIO()
    np.savez_compressed(packed, **arrays)
    manifest = {"format_version": TRACE_FORMAT_VERSION, "name": trace.name, "block_size": trace.block_size,
                "maps_sha256": hashlib.sha256(packed.getvalue()).hexdigest(),
                "meta": _yaml_safe(trace.meta, "meta"), "ops": ops}
    text = yaml.dump(manifest, Dumper=_YAML_DUMPER, sort_keys=False, default_flow_style=None, width=120)
    _atomic_write(directory, MAPS, packed.getvalue())
    _atomic_write(directory, MANIFEST, text.encode())
    return directory


def load_trace(path: str | os.PathLike[str]) -> Trace:
    """Read and check the trace in directory ``path`` (or a shipped trace's name, e.g. ``smollm2-135m-fgmp70``);
    :class:`TraceError` names the file, op and field."""
    directory = resolve_trace_dir(path).resolve()
    if not directory.is_dir():
        raise TraceError(f"trace directory {path} does not exist", "path",
                         "give a directory made by fgmpsim export / trace synth / trace gemm, or a shipped "
                         f"trace: {', '.join(shipped_traces())}")
    manifest = _read_manifest(_inside(directory, MANIFEST))
    block_size = _field(manifest, "block_size", int, "manifest")
    name = _field(manifest, "name", str, "manifest")
    meta = manifest.get("meta") or {}
    if not isinstance(meta, dict):
        raise TraceError("manifest meta must be a mapping", "meta", _REEXPORT)
    table = manifest.get("ops")
    if not isinstance(table, list) or not table:
        raise TraceError("manifest has no op table", "ops", _REEXPORT)
    checksum = manifest.get("maps_sha256")
    if not isinstance(checksum, str):
        raise TraceError("manifest lacks the maps.npz checksum", "maps_sha256", _REEXPORT)
    with _MapStore(directory, checksum) as store:
        ops = tuple(_read_op(entry, index, store) for index, entry in enumerate(table))
    trace = Trace(name=name, ops=ops, block_size=block_size, meta=meta)
    trace.check()
    return trace


def _map_entry(pmap: PrecisionMap, where: str, field: str, arrays: dict[str, np.ndarray],
               keys_by_digest: dict[bytes, str]) -> dict[str, Any]:
    if isinstance(pmap, LazyMap):
        spec = _yaml_safe(pmap.to_manifest(), f"{field}.lazy")
        if spec.get("generator") not in LAZY_GENERATORS:
            raise TraceError(f"{where}: lazy map generator {spec.get('generator')!r} cannot be reloaded",
                             f"{field}.lazy.generator",
                             f"use one of {', '.join(LAZY_GENERATORS)} or materialize the map")
        return {"lazy": spec}
    packed = np.packbits(pmap, axis=-1)
    digest = hashlib.sha1(repr(pmap.shape).encode() + packed.tobytes()).digest()
    key = keys_by_digest.setdefault(digest, f"map{len(keys_by_digest)}")
    arrays[key] = packed
    return {"npz": key, "shape": [int(s) for s in pmap.shape]}


def _yaml_safe(value: Any, where: str) -> Any:
    """``value`` with numpy scalars made Python and tuples made lists; :class:`TraceError` for anything else."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TraceError(f"{where} has a non-string key {key!r}", where, "use string keys in meta")
            out[key] = _yaml_safe(item, f"{where}.{key}")
        return out
    if isinstance(value, (list, tuple)):
        return [_yaml_safe(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    raise TraceError(f"{where} holds a {type(value).__name__}, which a manifest cannot store", where,
                     "store plain numbers, strings, lists and dicts")


def _atomic_write(directory: Path, name: str, data: bytes) -> None:
    """Write ``directory/name`` through a fresh temporary file (exclusive create: never through a link) and an
    atomic rename, so a failed write leaves the old file intact. maps.npz is written before the manifest that
    names its checksum, so a half-finished save never pairs a new manifest with old maps unnoticed."""
    tmp = directory / f".{name}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
    try:
        with open(tmp, "xb") as handle:
            handle.write(data)
        os.replace(tmp, directory / name)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _inside(directory: Path, name: str) -> Path:
    """``directory/name`` after resolving links; refuses a file that resolves outside ``directory``."""
    target = (directory / name).resolve()
    if not target.is_relative_to(directory):
        raise TraceError(f"{directory / name} points outside the trace directory (to {target})", name,
                         "copy the file into the trace directory instead of linking it")
    return target


def _read_manifest(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise TraceError(f"{path} is missing", MANIFEST, "give a trace directory made by fgmpsim")
    try:
        manifest = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise TraceError(f"{path} is not valid YAML: {' '.join(str(err).split())}", MANIFEST,
                         "fix the file or re-export the trace") from None
    if not isinstance(manifest, dict):
        raise TraceError(f"{path} is not a YAML mapping", MANIFEST, _REEXPORT)
    if "format_version" not in manifest:
        raise TraceError(f"{path} has no format_version", "format_version", _REEXPORT)
    if manifest["format_version"] != TRACE_FORMAT_VERSION:
        raise TraceError(f"{path} has format_version {manifest['format_version']!r}, this fgmpsim reads "
                         f"{TRACE_FORMAT_VERSION}", "format_version", f"{_REEXPORT} with this fgmpsim version")
    return manifest


def _field(entry: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in entry:
        raise TraceError(f"{where} lacks {key!r}", key, _REEXPORT)
    value = entry[key]
    wrong_bool = isinstance(value, bool) and kind is not bool
    if not isinstance(value, kind) or wrong_bool:
        raise TraceError(f"{where}: {key} has the wrong type ({type(value).__name__}: {value!r})", key, _REEXPORT)
    return value


def _read_op(entry: Any, index: int, store: _MapStore) -> GemmOp:
    if not isinstance(entry, dict):
        raise TraceError(f"op table entry {index} is not a mapping", f"ops[{index}]", _REEXPORT)
    name = _field(entry, "name", str, f"op table entry {index}")
    where = f"op {name!r}"
    values = {key: _field(entry, key, kind, where) for key, kind in _OP_FIELDS.items()}
    consumer = entry.get("consumer")
    if consumer is not None and not isinstance(consumer, str):
        raise TraceError(f"{where}: consumer must be an op name or null, got {consumer!r}", "consumer", _REEXPORT)
    maps = {field: store.get(entry.get(field), where, field) for field in _MAP_FIELDS}
    return GemmOp(**values, **maps, consumer=consumer, consumer_operand=entry.get("consumer_operand", "act"))


class _MapStore:
    """Reads maps for the loader: npz keys (unpacked once per key) and lazy specs (one object per distinct spec)."""

    def __init__(self, directory: Path, checksum: str) -> None:
        self.directory = directory
        self.checksum = checksum
        self.npz: Any = None
        self.arrays: dict[tuple[str, tuple[int, ...]], np.ndarray] = {}
        self.lazy: dict[LazyMap, LazyMap] = {}

    def __enter__(self) -> _MapStore:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.npz is not None:
            self.npz.close()

    def get(self, spec: Any, where: str, field: str) -> PrecisionMap:
        if not isinstance(spec, dict) or ("npz" in spec) == ("lazy" in spec):
            raise TraceError(f"{where}: {field} must be {{npz: KEY, shape: [...]}} or {{lazy: {{...}}}}, got "
                             f"{spec!r}", field, _REEXPORT)
        if "lazy" in spec:
            return self._lazy(spec["lazy"], where, field)
        key = spec["npz"]
        shape = spec.get("shape")
        if not isinstance(key, str):
            raise TraceError(f"{where}: npz key must be a string, got {key!r}", f"{field}.npz", _REEXPORT)
        if (not isinstance(shape, list) or not shape
                or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape)):
            raise TraceError(f"{where}: map shape must be a list of positive integers, got {shape!r}",
                             f"{field}.shape", _REEXPORT)
        cached = self.arrays.get((key, tuple(shape)))
        if cached is None:
            cached = self._unpack(key, tuple(shape), where, field)
            self.arrays[(key, tuple(shape))] = cached
        return cached

    def _lazy(self, spec: Any, where: str, field: str) -> LazyMap:
        if not isinstance(spec, dict):
            raise TraceError(f"{where}: lazy map spec must be a mapping", f"{field}.lazy", _REEXPORT)
        generator = spec.get("generator")
        if generator not in LAZY_GENERATORS:
            raise TraceError(f"{where}: unknown lazy-map generator {generator!r}", f"{field}.lazy.generator",
                             f"use one of {', '.join(LAZY_GENERATORS)}")
        try:
            lazy = LAZY_GENERATORS[generator](spec)
        except TraceError as err:
            raise TraceError(f"{where}: {err.what}", f"{field}.lazy.{err.field}", err.fix) from None
        return self.lazy.setdefault(lazy, lazy)

    def _unpack(self, key: str, shape: tuple[int, ...], where: str, field: str) -> np.ndarray:
        path = self.directory / MAPS
        if self.npz is None:
            if not path.exists():
                raise TraceError(f"{path} is missing but {where} stores {field} in it", MAPS,
                                 "copy maps.npz next to manifest.yaml or re-export the trace")
            data = _inside(self.directory, MAPS).read_bytes()
            if hashlib.sha256(data).hexdigest() != self.checksum:
                raise TraceError(f"{path} does not match its manifest (sha256 differs) while reading {where} "
                                 f"{field}", MAPS, "the file is truncated, corrupt or from another trace: "
                                 "re-export the trace")
            self.npz = self._guarded(lambda: np.load(io.BytesIO(data), allow_pickle=False), where, field)
        if key not in self.npz.files:
            raise TraceError(f"{where}: {field} key {key!r} is not in {path}", f"{field}.npz",
                             "the manifest and maps.npz are from different traces: re-export")
        packed = self._guarded(lambda: self.npz[key], where, field)
        want = shape[:-1] + ((shape[-1] + 7) // 8,)
        if packed.dtype != np.uint8 or packed.shape != want:
            raise TraceError(f"{where}: {field} {key!r} in maps.npz has {packed.dtype} {packed.shape}, expected "
                             f"uint8 {want} for map shape {list(shape)}", f"{field}.shape", _REEXPORT)
        return np.unpackbits(packed, axis=-1, count=shape[-1]).astype(np.bool_)

    def _guarded(self, read: Callable[[], Any], where: str, field: str) -> Any:
        """``read()`` with archive and decompression failures turned into a :class:`TraceError` naming the file."""
        try:
            return read()
        except TraceError:
            raise
        except (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError) as err:
            raise TraceError(f"{self.directory / MAPS} is unreadable ({type(err).__name__}: {err}) while reading "
                             f"{where} {field}", MAPS,
                             "the file is truncated or corrupt: re-export the trace") from None
