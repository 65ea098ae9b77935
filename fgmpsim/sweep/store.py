"""The result store of one sweep, in its output directory::

    DIR/sweep.json               which sweep this is (its spec and SHA-256) and every point of its latest run
                                 (a run deletes the files of points not in it: made by another code version)
    DIR/points/<key>.parquet     one file per finished point: its per-op rows; the point and its summary() in the
                                 Parquet key-value metadata (``fgmpsim.point``)
    DIR/failed/<key>.json        one record per failed point: error class, message, whether it is transient
    DIR/summary.parquet          one row per finished point (:func:`fgmpsim.sweep.load`), rewritten after each run

A local pool's workers write their own point files (and return only the key); on Dask the coordinating process
writes them from the returned rows. Every file is written to a hidden temporary name in its folder and renamed
into place, so a killed run leaves whole files or none: a point is finished exactly
when its Parquet file exists. A failure is *transient* when it came from the machine (a write error, a lost worker,
memory), and a rerun retries it; any other failure would repeat (same code, same inputs: the key says so) and stays
recorded until the code or the point changes.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from fgmpsim.errors import SweepError
from fgmpsim.sweep.points import Point
from fgmpsim.sweep.spec import SweepSpec

STORE_FORMAT = "fgmpsim-sweep/1"
SWEEP_FILE = "sweep.json"
SUMMARY_FILE = "summary.parquet"
POINT_METADATA = b"fgmpsim.point"
_TMP_PREFIX = ".tmp-"


def spec_sha256(spec: SweepSpec) -> str:
    """The identity of a sweep: the SHA-256 of its spec as written."""
    text = json.dumps(spec.document, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _plain(value: Any) -> Any:
    """numpy scalars -> Python numbers for JSON (floats keep every bit: JSON writes their repr)."""
    return value.item() if hasattr(value, "item") else str(value)


def _atomic_write(path: Path, write: Any) -> None:
    """``write(tmp_path)`` then rename over ``path``: readers see the old file or the whole new one."""
    tmp = path.with_name(f"{_TMP_PREFIX}{os.getpid()}-{path.name}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def point_parquet(description: dict[str, Any], summary: dict[str, Any], rows: list[dict[str, Any]]) -> bytes:
    """The Parquet file of one finished point: its per-op rows (:attr:`fgmpsim.sim.RunResult.rows`, read back as
    :meth:`~fgmpsim.sim.RunResult.to_frame` gives them), with the point's ``description`` (:meth:`Point.describe`) and
    ``summary`` in the file's metadata. Workers encode it, so the coordinator only writes bytes. The table is built
    from the rows directly (a DataFrame on the way cost 6 of a point's ~200 ms)."""
    import pyarrow as pa  # lazily: `import fgmpsim` stays cheap
    import pyarrow.parquet as pq

    meta = json.dumps({**description, "summary": summary}, default=_plain)
    table = pa.Table.from_pylist(rows, metadata={POINT_METADATA: meta.encode()})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def write_point_file(path: Path, data: bytes) -> None:
    """``data`` (from :func:`point_parquet`) as the point file ``path``, atomically."""
    _atomic_write(path, lambda tmp: tmp.write_bytes(data))


class Store:
    """The store in ``out`` (see the module docstring)."""

    def __init__(self, out: str | os.PathLike[str]) -> None:
        self.out = Path(out)
        self.points_dir = self.out / "points"
        self.failed_dir = self.out / "failed"

    def point_path(self, key: str) -> Path:
        return self.points_dir / f"{key}.parquet"

    def check(self, spec: SweepSpec) -> None:
        """Refuse an ``out`` that is a file, or a non-empty folder that is not this sweep's store."""
        out = self.out
        if out.exists() and not out.is_dir():
            raise SweepError(f"--out {str(out)!r} is a file", "--out", "give a directory for the sweep's store")
        if not out.is_dir() or not any(out.iterdir()):
            return
        record = self._record()
        if record is None:
            raise SweepError(f"{str(out)!r} is not empty and holds no sweep store ({SWEEP_FILE})", "--out",
                             "choose a new or empty directory")
        if record.get("spec_sha256") != spec_sha256(spec):
            raise SweepError(f"{str(out)!r} holds the store of another sweep ({record.get('name')!r}, "
                             f"{len(record.get('points', []))} points)", "--out",
                             "choose another directory, or delete this one to start over")

    def _record(self) -> dict[str, Any] | None:
        try:
            record = json.loads((self.out / SWEEP_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) and record.get("format") == STORE_FORMAT else None

    def open(self, spec: SweepSpec, points: list[Point]) -> None:
        """Create the folders, record this run's points, and delete temporary files of a killed run and the files
        of points that are not in this run (made by another code version: their keys will not come back)."""
        record = {"format": STORE_FORMAT, "name": spec.name, "spec_sha256": spec_sha256(spec),
                  "spec": spec.document, "points": [point.describe() for point in points]}
        text = json.dumps(record, indent=1, default=str)
        keys = {point.key for point in points}
        try:
            for folder in (self.points_dir, self.failed_dir):
                folder.mkdir(parents=True, exist_ok=True)
                for stale in folder.iterdir():
                    if stale.name.startswith(_TMP_PREFIX) or stale.stem not in keys:
                        stale.unlink(missing_ok=True)
            _atomic_write(self.out / SWEEP_FILE, lambda tmp: tmp.write_text(text, encoding="utf-8"))
        except OSError as err:
            raise SweepError(f"cannot create the sweep store in {str(self.out)!r}: {err.strerror or err}", "--out",
                             "give a writable directory") from None

    def points(self) -> list[dict[str, Any]]:
        """The points of the latest run (as :meth:`Point.describe` gives them), or raise if ``out`` is no store."""
        record = self._record()
        if record is None:
            raise SweepError(f"{str(self.out)!r} holds no sweep store ({SWEEP_FILE} missing or not a sweep's)",
                             "DIR", "give the --out directory of a fgmpsim sweep run")
        return record["points"]

    def finished(self) -> set[str]:
        """Keys whose point file exists (whole, by construction)."""
        return {path.stem for path in self.points_dir.glob("*.parquet") if not path.name.startswith(_TMP_PREFIX)}

    def failures(self) -> dict[str, dict[str, Any]]:
        """key -> failure record, for the points that failed and have not finished since."""
        finished = self.finished()
        records = {}
        for path in sorted(self.failed_dir.glob("*.json")):
            if path.name.startswith(_TMP_PREFIX) or path.stem in finished:
                continue
            try:
                records[path.stem] = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # unreadable: the point counts as not run, so a rerun retries it
        return records

    def write_point(self, point: Point, data: bytes | None) -> None:
        """Store a finished point (its :func:`point_parquet` bytes; ``None`` when its worker wrote the file) and
        forget an earlier failure of it."""
        if data is not None:
            write_point_file(self.point_path(point.key), data)
        (self.failed_dir / f"{point.key}.json").unlink(missing_ok=True)

    def write_failure(self, point: Point, error_class: str, message: str, transient: bool) -> None:
        record = {**point.describe(), "error_class": error_class, "message": message, "transient": transient}
        text = json.dumps(record, indent=1, default=_plain)
        _atomic_write(self.failed_dir / f"{point.key}.json", lambda tmp: tmp.write_text(text, encoding="utf-8"))

    def read_point(self, key: str, per_op: bool) -> tuple[dict[str, Any], pd.DataFrame | None]:
        """The stored point description with its ``summary``, and its per-op frame if ``per_op``."""
        import pyarrow.parquet as pq

        path = self.point_path(key)
        meta = json.loads(pq.read_schema(path).metadata[POINT_METADATA])
        return meta, (pd.read_parquet(path) if per_op else None)

    def write_summary(self, table: pd.DataFrame) -> Path:
        path = self.out / SUMMARY_FILE
        _atomic_write(path, lambda tmp: table.to_parquet(tmp, index=False))
        return path
