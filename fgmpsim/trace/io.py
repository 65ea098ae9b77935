"""On-disk form of a :class:`~fgmpsim.trace.record.Trace`: ``<dir>/manifest.yaml`` + ``<dir>/maps.npz``.

``manifest.yaml`` (human-readable head first): ``format_version`` (1: every K a multiple of ``block_size``; 2: any
K, a zero-padded partial last block; 3: ops carry ``causal``; 4: operands may carry a uniform format; a trace is
written with the lowest that holds it),
``name``, ``block_size``, ``maps_sha256``, ``meta`` (the exporter's descriptive head, carried verbatim), then
``ops``: one dict per GEMM with ``name, layer, kind, m, k, n, repeat, static_weight, consumer, consumer_operand``,
``causal`` (versions 3 and 4; versions 1 and 2 load as dense), ``weight_format`` / ``act_format`` (version 4 only,
written for uniform operands: ``{name, group_size, channel_scale, lorc_rank}``, :mod:`fgmpsim.trace.formats`; a
missing key, and every operand of versions 1-3, is ``mixed``) and, per map, either
``{npz: KEY, shape: [...]}`` (bits in ``maps.npz``) or ``{lazy: {generator: NAME, ...}}`` (a generator spec from
``LazyMap.to_manifest()``).

``maps.npz`` (``np.savez_compressed``) holds each stored map bit-packed along its last axis (``np.packbits``,
``uint8``); its true shape is in the manifest, and ``maps_sha256`` pins the file's bytes (a maps.npz from another
save is refused). Maps with identical bits are stored once; on loading, ops that shared a map share one array
(and equal lazy specs one object), so consumers may cache by identity.
Loading trusts nothing: every field, shape and key is checked and errors name the op and field. Unknown keys are
errors (with a did-you-mean), as in arch YAML. The manifest goes through the one YAML reader
(:mod:`fgmpsim.io.safe_yaml`: size, depth and alias caps); ``maps.npz`` must be a regular file of at most
:data:`MAX_MAPS_BYTES`, and each member is read only after its npy header's dtype and shape equal what the
manifest says, decompressing exactly that many bytes (a member that inflates further, or is not npy data, is
refused). Op sizes are checked against :mod:`fgmpsim.trace.budget` before any map is read or generated.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from fgmpsim.errors import TraceError, closest_hint, excerpt
from fgmpsim.io.atomic import atomic_write, check_output_dir
from fgmpsim.io.safe_yaml import MAX_YAML_BYTES, read_bounded, read_yaml_file
from fgmpsim.resources import resolve_trace_dir, shipped_traces
from fgmpsim.trace.budget import MAX_OP_MAP_BLOCKS, check_op_size
from fgmpsim.trace.formats import MIXED, format_from_manifest
from fgmpsim.trace.record import (ANY_K_FORMAT_VERSION, CAUSAL_FORMAT_VERSION, OPERAND_FORMAT_VERSION,
                                  READABLE_FORMAT_VERSIONS, WHOLE_BLOCKS_FORMAT_VERSION, GemmOp, LazyMap,
                                  PrecisionMap, Trace)
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
_MANIFEST_KEYS = ("format_version", "name", "block_size", "maps_sha256", "meta", "ops")
_FORMAT_FIELDS = ("weight_format", "act_format")
_OP_KEYS = (*_OP_FIELDS, "consumer", "consumer_operand", "causal", *_MAP_FIELDS, *_FORMAT_FIELDS)
_MAP_KEYS = {"npz": ("npz", "shape"), "lazy": ("lazy",)}
_FRACTION_META = ("fp4_fraction_target", "fp4_fraction_achieved")
MAX_MAPS_BYTES = 2**31
"""Largest ``maps.npz`` read (2 GiB; the real SmolLM2-135M export's is 0.8 MB)."""
_YAML_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_REEXPORT = "re-export or re-synthesize the trace"


def save_trace(trace: Trace, path: str | os.PathLike[str]) -> Path:
    """Write ``trace`` to the directory ``path`` (created if needed) and return it.

    Only ``path/manifest.yaml`` and ``path/maps.npz`` are written (each via a temporary file in ``path`` and an
    atomic rename, which replaces a symlink rather than writing through it). The trace is checked first.
    """
    trace.check()
    directory = check_output_dir(path, "--out", TraceError)
    directory.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    keys_by_digest: dict[bytes, str] = {}
    ops = []
    partial = any(op.k % trace.block_size for op in trace.ops)
    uniform = any(op.uniform for op in trace.ops)
    version = (OPERAND_FORMAT_VERSION if uniform else CAUSAL_FORMAT_VERSION if any(op.causal for op in trace.ops)
               else ANY_K_FORMAT_VERSION if partial else WHOLE_BLOCKS_FORMAT_VERSION)
    for op in trace.ops:
        entry: dict[str, Any] = {"name": op.name, "layer": int(op.layer), "kind": op.kind, "m": int(op.m),
                                 "k": int(op.k), "n": int(op.n), "repeat": int(op.repeat),
                                 "static_weight": bool(op.static_weight), "consumer": op.consumer,
                                 "consumer_operand": op.consumer_operand}
        if version >= CAUSAL_FORMAT_VERSION:
            entry["causal"] = bool(op.causal)
        for field in _FORMAT_FIELDS:
            if getattr(op, field).uniform:
                entry[field] = getattr(op, field).to_manifest()
        for field in _MAP_FIELDS:
            entry[field] = _map_entry(getattr(op, field), f"op {op.name!r}", field, arrays, keys_by_digest)
        ops.append(entry)
    packed = io.BytesIO()
    np.savez_compressed(packed, **arrays)
    manifest = {"format_version": version,
                "name": trace.name, "block_size": trace.block_size,
                "maps_sha256": hashlib.sha256(packed.getvalue()).hexdigest(),
                "meta": _yaml_safe(trace.meta, "meta"), "ops": ops}
    text = yaml.dump(manifest, Dumper=_YAML_DUMPER, sort_keys=False, default_flow_style=None, width=120)
    # maps.npz before the manifest that names its checksum: a half-finished save never pairs a new manifest with
    # old maps unnoticed
    atomic_write(directory / MAPS, packed.getvalue())
    atomic_write(directory / MANIFEST, text.encode())
    return directory


def load_trace(path: str | os.PathLike[str], max_op_map_blocks: int = MAX_OP_MAP_BLOCKS) -> Trace:
    """Read and check the trace in directory ``path`` (or a shipped trace's name, e.g. ``smollm2-135m-fgmp70``);
    :class:`TraceError` names the file, op and field. An op larger than ``max_op_map_blocks``
    (:mod:`fgmpsim.trace.budget`) is refused before its maps are read."""
    directory = resolve_trace_dir(path).resolve()
    if not directory.is_dir():
        raise TraceError(f"trace directory {path} does not exist", "path",
                         "give a directory made by fgmpsim export / trace synth / trace gemm, or a shipped "
                         f"trace: {', '.join(shipped_traces())}")
    manifest = _read_manifest(_inside(directory, MANIFEST))
    _known_keys(manifest, _MANIFEST_KEYS, "manifest", "")
    block_size = _field(manifest, "block_size", int, "manifest")
    if not 0 < block_size <= 1024:
        raise TraceError(f"manifest: block_size must be in [1, 1024], got {excerpt(block_size)}", "block_size",
                         _REEXPORT)
    name = _field(manifest, "name", str, "manifest")
    meta = manifest.get("meta") or {}
    if not isinstance(meta, dict):
        raise TraceError("manifest meta must be a mapping", "meta", _REEXPORT)
    _check_fraction_meta(meta)
    table = manifest.get("ops")
    if not isinstance(table, list) or not table:
        raise TraceError("manifest has no op table", "ops", _REEXPORT)
    checksum = manifest.get("maps_sha256")
    if not isinstance(checksum, str):
        raise TraceError("manifest lacks the maps.npz checksum", "maps_sha256", _REEXPORT)
    version = manifest["format_version"]
    with _MapStore(directory, checksum) as store:
        ops = tuple(_read_op(entry, index, store, block_size, max_op_map_blocks, version)
                    for index, entry in enumerate(table))
    partial = next((op for op in ops if op.k % block_size), None)
    if partial is not None and manifest["format_version"] == WHOLE_BLOCKS_FORMAT_VERSION:
        raise TraceError(f"op {excerpt(partial.name)}: K={partial.k} is not a multiple of the block size "
                         f"{block_size}, which format_version {WHOLE_BLOCKS_FORMAT_VERSION} does not allow",
                         "format_version", f"{_REEXPORT} (a partial last block needs format_version "
                         f"{ANY_K_FORMAT_VERSION} or later)")
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


def _inside(directory: Path, name: str) -> Path:
    """``directory/name`` after resolving links; refuses a file that resolves outside ``directory``."""
    target = (directory / name).resolve()
    if not target.is_relative_to(directory):
        raise TraceError(f"{directory / name} points outside the trace directory (to {target})", name,
                         "copy the file into the trace directory instead of linking it")
    return target


def _read_manifest(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise TraceError(f"{path} is missing", MANIFEST, "give a trace directory made by fgmpsim")
    manifest = read_yaml_file(path, MANIFEST, TraceError, MAX_YAML_BYTES)
    if not isinstance(manifest, dict):
        raise TraceError(f"{path} is not a YAML mapping", MANIFEST, _REEXPORT)
    if "format_version" not in manifest:
        raise TraceError(f"{path} has no format_version", "format_version", _REEXPORT)
    version = manifest["format_version"]
    if isinstance(version, bool) or version not in READABLE_FORMAT_VERSIONS:
        raise TraceError(f"{path} has format_version {excerpt(version)}, this fgmpsim reads "
                         f"{' or '.join(map(str, READABLE_FORMAT_VERSIONS))}", "format_version",
                         f"{_REEXPORT} with this fgmpsim version")
    return manifest


def _known_keys(entry: dict[Any, Any], known: tuple[str, ...], where: str, prefix: str) -> None:
    """:class:`TraceError` with a did-you-mean for the first key of ``entry`` not in ``known``."""
    for key in entry:
        if key not in known:
            shown = excerpt(key) if isinstance(key, str) else excerpt(str(key))
            raise TraceError(f"{where}: unknown key {shown}", f"{prefix}{str(key)[:60]}",
                             closest_hint(str(key), known))


def _check_fraction_meta(meta: dict[str, Any]) -> None:
    """The FP4 fractions the tools print must be numbers in [0, 1] (or null) per tensor class."""
    for key in _FRACTION_META:
        value = meta.get(key)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise TraceError(f"manifest meta.{key} must map tensor classes to fractions, got {excerpt(value)}",
                             f"meta.{key}", _REEXPORT)
        for cls, fraction in value.items():
            number = isinstance(fraction, (int, float)) and not isinstance(fraction, bool)
            if fraction is not None and not (number and 0.0 <= fraction <= 1.0):
                raise TraceError(f"manifest meta.{key}.{str(cls)[:60]} must be a number in [0, 1] or null, got "
                                 f"{excerpt(fraction)}", f"meta.{key}.{str(cls)[:60]}", _REEXPORT)


def _field(entry: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in entry:
        raise TraceError(f"{where} lacks {key!r}", key, _REEXPORT)
    value = entry[key]
    wrong_bool = isinstance(value, bool) and kind is not bool
    if not isinstance(value, kind) or wrong_bool:
        raise TraceError(f"{where}: {key} has the wrong type ({type(value).__name__}: {excerpt(value)})", key,
                         _REEXPORT)
    return value


def _read_op(entry: Any, index: int, store: _MapStore, block_size: int, max_op_map_blocks: int,
             version: int) -> GemmOp:
    if not isinstance(entry, dict):
        raise TraceError(f"op table entry {index} is not a mapping", f"ops[{index}]", _REEXPORT)
    name = _field(entry, "name", str, f"op table entry {index}")
    where = f"op {excerpt(name)}"
    known = tuple(k for k in _OP_KEYS if (k != "causal" or version >= CAUSAL_FORMAT_VERSION)
                  and (k not in _FORMAT_FIELDS or version >= OPERAND_FORMAT_VERSION))
    _known_keys(entry, known, where, f"ops[{index}].")
    formats = {field: format_from_manifest(entry[field], where, f"ops[{index}].{field}") if field in entry else MIXED
               for field in _FORMAT_FIELDS}
    causal = _field(entry, "causal", bool, where) if version >= CAUSAL_FORMAT_VERSION else False
    values = {key: _field(entry, key, kind, where) for key, kind in _OP_FIELDS.items()}
    for dim in ("m", "k", "n", "repeat"):
        if values[dim] < 1:
            raise TraceError(f"{where}: {dim.upper()} must be a positive integer, got {values[dim]}", dim, _REEXPORT)
    slices = {field: _slices(entry.get(field), values["repeat"]) for field in _MAP_FIELDS}
    check_op_size(values["m"], values["k"], values["n"], values["repeat"], block_size, where, max_op_map_blocks,
                  slices["weight_map"], slices["act_map"])
    consumer = entry.get("consumer")
    if consumer is not None and not isinstance(consumer, str):
        raise TraceError(f"{where}: consumer must be an op name or null, got {excerpt(consumer)}", "consumer",
                         _REEXPORT)
    maps = {field: store.get(entry.get(field), where, field) for field in _MAP_FIELDS}
    return GemmOp(**values, **maps, consumer=consumer, consumer_operand=entry.get("consumer_operand", "act"),
                  causal=causal, **formats)


def _slices(spec: Any, repeat: int) -> int:
    """1 for a map shared by all repeats, ``repeat`` for one with a slice per repeat (from its manifest shape)."""
    inner = spec.get("lazy") if isinstance(spec, dict) and "lazy" in spec else spec
    shape = inner.get("shape") if isinstance(inner, dict) else None
    return repeat if isinstance(shape, list) and len(shape) == 3 else 1


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
                             f"{excerpt(spec)}", field, _REEXPORT)
        _known_keys(spec, _MAP_KEYS["npz" if "npz" in spec else "lazy"], where, f"{field}.")
        if "lazy" in spec:
            return self._lazy(spec["lazy"], where, field)
        key = spec["npz"]
        shape = spec.get("shape")
        if not isinstance(key, str):
            raise TraceError(f"{where}: npz key must be a string, got {excerpt(key)}", f"{field}.npz", _REEXPORT)
        if (not isinstance(shape, list) or len(shape) not in (2, 3)
                or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape)):
            raise TraceError(f"{where}: map shape must be a list of 2 or 3 positive integers, got {excerpt(shape)}",
                             f"{field}.shape", _REEXPORT)
        if math.prod(shape) > MAX_OP_MAP_BLOCKS:
            raise TraceError(f"{where}: map shape {shape} has {math.prod(shape):,} blocks, more than the "
                             f"{MAX_OP_MAP_BLOCKS:,} any op may have", f"{field}.shape", _REEXPORT)
        cached = self.arrays.get((key, tuple(shape)))
        if cached is None:
            cached = self._unpack(key, tuple(shape), where, field)
            self.arrays[(key, tuple(shape))] = cached
        return cached

    def _lazy(self, spec: Any, where: str, field: str) -> LazyMap:
        if not isinstance(spec, dict):
            raise TraceError(f"{where}: lazy map spec must be a mapping", f"{field}.lazy", _REEXPORT)
        generator = spec.get("generator")
        if not isinstance(generator, str) or generator not in LAZY_GENERATORS:
            raise TraceError(f"{where}: unknown lazy-map generator {excerpt(generator)}", f"{field}.lazy.generator",
                             closest_hint(str(generator), tuple(LAZY_GENERATORS)))
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
            data = read_bounded(_inside(self.directory, MAPS), MAPS, TraceError, MAX_MAPS_BYTES)
            if hashlib.sha256(data).hexdigest() != self.checksum:
                raise TraceError(f"{path} does not match its manifest (sha256 differs) while reading {where} "
                                 f"{field}", MAPS, "the file is truncated, corrupt or from another trace: "
                                 "re-export the trace")
            self.npz = self._guarded(lambda: zipfile.ZipFile(io.BytesIO(data)), where, field)
        member = f"{key}.npy"
        if member not in self.npz.namelist():
            raise TraceError(f"{where}: {field} key {excerpt(key)} is not in {path}", f"{field}.npz",
                             "the manifest and maps.npz are from different traces: re-export")
        want = shape[:-1] + ((shape[-1] + 7) // 8,)
        packed = self._guarded(lambda: self._read_member(member, want, where, field), where, field)
        pmap = np.unpackbits(packed, axis=-1, count=shape[-1]).astype(np.bool_)
        pmap.flags.writeable = False  # a trace's maps are its record: simulations may cache what they count
        return pmap

    def _read_member(self, member: str, want: tuple[int, ...], where: str, field: str) -> np.ndarray:
        """The ``uint8`` array ``want`` stored as npy in ``member``: the header is read and compared first, then
        exactly the bytes that shape needs are decompressed (never more)."""
        with self.npz.open(member) as stream:
            try:
                version = np.lib.format.read_magic(stream)
                if version == (1, 0):
                    header = np.lib.format.read_array_header_1_0(stream, max_header_size=4096)
                elif version == (2, 0):
                    header = np.lib.format.read_array_header_2_0(stream, max_header_size=4096)
                else:
                    raise ValueError(f"npy version {version}")
            except ValueError as err:
                raise TraceError(f"{where}: {field} member {member!r} of maps.npz is not npy data "
                                 f"({excerpt(str(err))})", f"{field}.npz", _REEXPORT) from None
            got_shape, fortran, dtype = header
            if dtype != np.uint8 or fortran or tuple(got_shape) != want:
                raise TraceError(f"{where}: {field} {member!r} in maps.npz has {dtype} {tuple(got_shape)}, expected "
                                 f"uint8 {want} (bit-packed map shape from the manifest)", f"{field}.shape",
                                 _REEXPORT)
            size = math.prod(want)
            data = stream.read(size + 1)  # one byte more than the shape needs shows trailing data
        if len(data) != size:
            raise TraceError(f"{where}: {field} {member!r} in maps.npz holds {'more' if len(data) > size else 'fewer'}"
                             f" bytes than its header's shape {want}", f"{field}.npz", _REEXPORT)
        return np.frombuffer(data, dtype=np.uint8).reshape(want)

    def _guarded(self, read: Callable[[], Any], where: str, field: str) -> Any:
        """``read()`` with archive and decompression failures turned into a :class:`TraceError` naming the file."""
        try:
            return read()
        except TraceError:
            raise
        except (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError, NotImplementedError,
                RuntimeError) as err:
            raise TraceError(f"{self.directory / MAPS} is unreadable ({type(err).__name__}: {excerpt(str(err))}) "
                             f"while reading {where} {field}", MAPS,
                             "the file is truncated or corrupt: re-export the trace") from None


def manifest_sha256(path: str | os.PathLike[str]) -> str:
    """The sha256 of the trace directory's ``manifest.yaml`` bytes (which pin ``maps.npz`` through its checksum):
    the identity a result's provenance records."""
    directory = resolve_trace_dir(path).resolve()
    return hashlib.sha256(read_bounded(_inside(directory, MANIFEST), MANIFEST, TraceError, MAX_YAML_BYTES)).hexdigest()
