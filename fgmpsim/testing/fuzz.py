"""The fuzz suite: hypothesis strategies over every input fgmpsim reads, each case run in a capped worker.

Families (each a hypothesis strategy producing a picklable payload):

* ``arch_yaml``: arch documents (the merged ``fgmp`` document with fields set to hostile values, deleted, renamed
  or added; ``extends:`` to shipped names, subdirectories, ``..``, absolute paths and symlinks; alias bombs, deep
  nesting, duplicate keys, bad UTF-8, NUL bytes, truncation, random bytes);
* ``overrides``: ``--set`` lists (known and misspelt paths, hostile YAML values);
* ``manifest``: the fixture trace's manifest with fields mutated, deleted, added or its text damaged;
* ``maps``: ``maps.npz`` bytes (flipped, truncated, random, forged npy headers, non-npy members, members that
  inflate far beyond their shape), with the manifest checksum updated to match most of the time;
* ``cli``: argument vectors for ``simulate``, ``trace gemm``, ``trace show`` and random words.

Every case runs in a persistent worker (:mod:`fgmpsim.testing.worker`: fgmpsim imported once, address space capped,
per-case timeout) and must end as :mod:`fgmpsim.testing.cases` says: a typed error naming a field or a result
that passes the sanity checks. Run ``python -m fgmpsim.testing.fuzz --examples 20000`` (the long profile; it
rewrites the counts in ``docs/reliability.md``); ``tests/test_fuzz_short.py`` runs the short profile in CI.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import io
import json
import math
import sys
import tempfile
import time
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from fgmpsim.testing.cases import INSANE, TYPED, UNTYPED, VALID, save_fixture
from fgmpsim.testing.worker import CRASH, HANG, Outcome, Worker

FAMILIES = ("arch_yaml", "overrides", "manifest", "maps", "cli")
STATUSES = (TYPED, VALID, UNTYPED, INSANE, HANG, CRASH)
FAILURES = (UNTYPED, INSANE, HANG, CRASH)
MEMORY_BYTES = 2 * 2**30
"""Address-space cap of the worker (2 GiB; fgmpsim imported, after a simulation, uses 0.4 GiB of address space)."""
TIMEOUT_S = 30.0
"""Per-case timeout; every case of the fixture finishes in well under a second when nothing is wrong."""
REPORT_BEGIN, REPORT_END = "<!-- fuzz:begin -->", "<!-- fuzz:end -->"

# --- shared value strategies --------------------------------------------------------------------------------------

_EDGE_INTS = [0, 1, -1, 2, 3, 15, 16, 17, 2**20, 2**20 + 1, 2**31, 2**40, 2**50 + 1, 2**53 + 1, 2**54, 2**62,
              2**63 - 1, 2**63, 2**64, -2**63, 10**30]
_EDGE_FLOATS = [0.0, -0.0, 5e-324, 1e-300, 1e-9, 0.5, 1.0, 1e3, 1e9, 1e12, 1e13, 1e308, math.inf, -math.inf,
                math.nan]
_WORDS = ["fp4", "fp8", "weight_stationary", "output_stationary", "1e9", "true", "null", "", " ", "base.yaml",
          "x" * 300, "é€\u202e", "../", "{", "- a"]
scalars = st.one_of(st.integers(-2**70, 2**70), st.sampled_from(_EDGE_INTS), st.floats(), st.sampled_from(_EDGE_FLOATS),
                    st.booleans(), st.none(), st.text(max_size=40), st.sampled_from(_WORDS))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=8)


def _plausible(value: Any) -> st.SearchStrategy[Any]:
    """Values near ``value`` (same type, a small change), so that many cases get past validation and exercise the
    simulator and its sanity checks rather than only the error paths."""
    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, int):
        return st.sampled_from(sorted({value, value + 1, max(1, value - 1), 2 * value, max(1, value // 2), 1, 2, 4,
                                       16, 64, 4096}))
    if isinstance(value, float):
        return st.sampled_from([value, 2 * value, value / 2, value * 1.5])
    if isinstance(value, list) and value:
        return st.lists(st.sampled_from(value), min_size=1, max_size=len(value), unique_by=repr)
    return st.just(value)


def _new_value(original: Any) -> st.SearchStrategy[Any]:
    return st.one_of(_plausible(original), _plausible(original), values)


def _yaml_text(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix("...").strip()


@st.composite
def _damaged_text(draw: st.DrawFn, text: bytes) -> bytes:
    """``text`` unchanged or damaged in one of the ways a file gets damaged or forged."""
    how = draw(st.sampled_from(["none"] * 6 + ["truncate", "insert", "bytes", "bomb", "deep", "dup", "nul", "utf8",
                                               "bigint", "random"]))
    if how == "none":
        return text
    at = draw(st.integers(0, len(text)))
    if how == "truncate":
        return text[:at]
    if how == "insert":
        return text[:at] + draw(st.binary(max_size=20)) + text[at:]
    if how == "bytes":
        return text[:at] + draw(st.sampled_from([b":", b"[", b"{", b"&a", b"*a", b"!!python/object:os.system",
                                                 b"\t", b"---\n", b"<<: *a\n"])) + text[at:]
    if how == "bomb":
        levels = draw(st.integers(2, 10))
        lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
        lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels)]
        return ("\n".join(lines) + "\n").encode() + text
    if how == "deep":
        depth = draw(st.integers(10, 5000))
        return text + b"\nnested: " + b"[" * depth + b"]" * depth + b"\n"
    if how == "dup":
        return text + text[: draw(st.integers(1, max(1, len(text))))]
    if how == "nul":
        return text[:at] + b"\x00" + text[at:]
    if how == "utf8":
        return text[:at] + b"\xff\xfe\xc3" + text[at:]
    if how == "bigint":
        return text + b"\nbig: " + b"9" * draw(st.integers(20, 6000)) + b"\n"
    return draw(st.binary(max_size=400))


def _get(document: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        document = document[part]
    return document


def _leaf_paths(document: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if not isinstance(document, dict):
        return [prefix]
    paths = [prefix] if prefix else []
    for key, value in document.items():
        paths += _leaf_paths(value, (*prefix, key))
    return paths


@st.composite
def _mutated(draw: st.DrawFn, document: dict[str, Any], paths: list[tuple[str, ...]]) -> dict[str, Any]:
    """A deep copy of ``document`` with 0-4 of its paths set to hostile values, deleted, renamed or extended."""
    doc = copy.deepcopy(document)
    for _ in range(draw(st.integers(0, 4))):
        path = draw(st.sampled_from(paths))
        node = doc
        for part in path[:-1]:
            if not isinstance(node.get(part) if isinstance(node, dict) else None, dict):
                break
            node = node[part]
        else:
            action = draw(st.sampled_from(["set", "set", "set", "delete", "rename", "add"]))
            key = path[-1]
            if action == "set":
                node[key] = draw(_new_value(node.get(key)))
            elif action == "delete":
                node.pop(key, None)
            elif action == "rename" and key in node:
                node[key + draw(st.sampled_from(["s", "_", "x"]))] = node.pop(key)
            elif action == "add":
                node[draw(st.text(min_size=1, max_size=12))] = draw(values)
    return doc


# --- families -----------------------------------------------------------------------------------------------------

@dataclass
class Fixture:
    """What the generators mutate: the merged fgmp document, the fixture trace's manifest and maps."""

    directory: Path
    arch: dict[str, Any] = field(init=False)
    manifest: dict[str, Any] = field(init=False)
    manifest_bytes: bytes = field(init=False)
    maps: bytes = field(init=False)

    def __post_init__(self) -> None:
        from fgmpsim.arch import ARCH_CONFIG_DIR
        from fgmpsim.arch.documents import read_with_extends

        trace = save_fixture(self.directory)
        self.arch = read_with_extends(ARCH_CONFIG_DIR / "fgmp.yaml")
        self.manifest_bytes = (trace / "manifest.yaml").read_bytes()
        self.manifest = yaml.safe_load(self.manifest_bytes)
        self.maps = (trace / "maps.npz").read_bytes()


def arch_yaml_cases(fx: Fixture) -> st.SearchStrategy[dict[str, Any]]:
    paths = _leaf_paths(fx.arch)
    parent = yaml.safe_dump({"pe_array": {"pes": 8}, "extends": "fgmp.yaml"}).encode()

    @st.composite
    def case(draw: st.DrawFn) -> dict[str, Any]:
        doc = draw(_mutated(fx.arch, paths))
        extends = draw(st.sampled_from([None] * 4 + ["base.yaml", "fgmp.yaml", "sub/parent.yaml", "../outside.yaml",
                                                     "/etc/passwd", "/dev/zero", "link.yaml", "main.yaml",
                                                     "missing.yaml", "..", ""]))
        if extends is not None:
            doc = {"extends": extends, **{k: v for k, v in doc.items() if draw(st.booleans())}}
        text = draw(_damaged_text(yaml.safe_dump(doc, sort_keys=False).encode()))
        return {"files": {"configs/main.yaml": text, "configs/sub/parent.yaml": parent,
                          "outside.yaml": yaml.safe_dump(fx.arch).encode()},
                "links": {"configs/link.yaml": "outside.yaml"}}

    return case()


def overrides_cases(fx: Fixture) -> st.SearchStrategy[dict[str, Any]]:
    leaves = {".".join(p): value for p in _leaf_paths(fx.arch) if not isinstance(value := _get(fx.arch, p), dict)}
    known = sorted(leaves)
    near = st.sampled_from(known).flatmap(lambda p: _plausible(leaves[p]).map(lambda v: f"{p}={_yaml_text(v)}"))
    path = st.one_of(st.sampled_from(known), st.sampled_from(known).map(lambda p: p[:-1] + "x"),
                     st.text(max_size=30))
    value = st.one_of(values.map(_yaml_text), st.text(max_size=40), st.sampled_from(
        [str(v) for v in _EDGE_INTS] + ["5e-324", ".nan", ".inf", "-.inf", "2**54", "9" * 5000, "[1, 2]", "{a: 1}",
                                        "", "&a [*a]", "[" * 200]))
    item = st.one_of(near, near, st.builds(lambda p, v: f"{p}={v}", path, value), st.text(max_size=30))
    return st.fixed_dictionaries({"arch": st.sampled_from(["fgmp", "fp8_baseline", "nvfp4", "fgmp_output_stationary",
                                                           "fgmp_fp8_half_rate"]),
                                  "overrides": st.lists(item, min_size=1, max_size=3)})


def manifest_cases(fx: Fixture) -> st.SearchStrategy[dict[str, Any]]:
    paths = _leaf_paths(fx.manifest)
    for index, op in enumerate(fx.manifest["ops"]):  # list items are not reached by _leaf_paths
        paths += [("ops", index, key) for key in op]
        paths += [("ops", index, m, key) for m in ("weight_map", "act_map") for key in op[m]]
        paths += [("ops", index, m, "lazy", key) for m in ("weight_map", "act_map") if "lazy" in op[m]
                  for key in op[m]["lazy"]]

    @st.composite
    def case(draw: st.DrawFn) -> dict[str, Any]:
        doc = copy.deepcopy(fx.manifest)
        for _ in range(draw(st.integers(0, 3))):
            path = draw(st.sampled_from(paths))
            node: Any = doc
            try:
                for part in path[:-1]:
                    node = node[part]
                action = draw(st.sampled_from(["set", "set", "set", "set", "delete", "add", "scale", "scale"]))
                if action == "set":
                    node[path[-1]] = draw(_new_value(node[path[-1]]))
                elif action == "delete":
                    del node[path[-1]]
                elif action == "add":
                    node[draw(st.sampled_from(["repeats", "shapes", "extra", "consumers", "Name"]))] = draw(values)
                elif isinstance(node[path[-1]], int) and not isinstance(node[path[-1]], bool):
                    node[path[-1]] *= draw(st.sampled_from([0, -1, 2, 16, 10**6, 2**40]))
            except (KeyError, IndexError, TypeError):
                pass
        text = draw(_damaged_text(yaml.safe_dump(doc, sort_keys=False).encode()))
        return {"manifest": text}

    return case()


_MEMBER_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_"  # zipfile cuts names at NUL; an empty name breaks it


def _npz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _npy(descr: str, shape: tuple[int, ...], payload: bytes) -> bytes:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": descr, "fortran_order": False, "shape": shape})
    return header.getvalue() + payload


def maps_cases(fx: Fixture) -> st.SearchStrategy[dict[str, Any]]:
    with zipfile.ZipFile(io.BytesIO(fx.maps)) as archive:
        names = archive.namelist()
        members = {name: archive.read(name) for name in names}
    shapes = st.lists(st.one_of(st.integers(0, 40), st.sampled_from([10**6, 2**31, 2**40])), min_size=0, max_size=3)

    @st.composite
    def case(draw: st.DrawFn) -> dict[str, Any]:
        how = draw(st.sampled_from(["flip", "truncate", "random", "forged", "not_npy", "extra", "inflate", "drop"]))
        data = fx.maps
        if how == "flip":
            raw = bytearray(data)
            for _ in range(draw(st.integers(1, 8))):
                raw[draw(st.integers(0, len(raw) - 1))] ^= draw(st.integers(1, 255))
            data = bytes(raw)
        elif how == "truncate":
            data = data[:draw(st.integers(0, len(data) - 1))]
        elif how == "random":
            data = draw(st.binary(max_size=2000))
        elif how in ("forged", "not_npy", "extra", "drop", "inflate"):
            forged = dict(members)
            name = draw(st.sampled_from(names))
            if how == "forged":
                descr = draw(st.sampled_from(["|u1", "|b1", "<i8", "<f8", "|O", "<U3"]))
                forged[name] = _npy(descr, tuple(draw(shapes)), draw(st.binary(max_size=200)))
            elif how == "not_npy":
                forged[name] = draw(st.binary(max_size=200))
            elif how == "extra":
                forged[draw(st.text(_MEMBER_CHARS, min_size=1, max_size=10)) + ".npy"] = members[name]
            elif how == "drop":
                del forged[name]
            else:  # a member whose bytes inflate far beyond what its header's shape needs
                forged[name] = members[name] + bytes(draw(st.sampled_from([1, 2**20, 2**26])))
            data = _npz(forged)
        manifest = fx.manifest_bytes
        if draw(st.integers(0, 4)) > 0:  # most cases pass the checksum, so the npz reader itself is exercised
            doc = dict(fx.manifest, maps_sha256=hashlib.sha256(data).hexdigest())
            manifest = yaml.safe_dump(doc, sort_keys=False).encode()
        return {"manifest": manifest, "maps": data}

    return case()


def cli_cases(fx: Fixture) -> st.SearchStrategy[dict[str, Any]]:
    number = st.one_of(st.integers(-5, 5000).map(str), st.sampled_from([str(v) for v in _EDGE_INTS]),
                       st.sampled_from(["1.5", "abc", "", "1e3", "0x10", "10**12"]))
    out_file = st.sampled_from(["{tmp}/r.json", "{tmp}/r.parquet", "{tmp}/r.csv", "", "{tmp}", "{tmp}/file.txt/r.json",
                                "/proc/self/r.json", "/dev/null", "{tmp}/r.xlsx", "{tmp}/new/dir/r.csv"])
    out_dir = st.sampled_from(["{tmp}/t", "", "{tmp}/file.txt", "{tmp}/file.txt/t", "/proc/t", "{tmp}"])
    arch = st.sampled_from(["fgmp", "fp8_baseline", "nvfp4", "nope", "", "/etc/passwd", "{tmp}/file.txt"])
    sets = st.lists(st.sampled_from(["clock_hz=5e-324", "pe_array.pes=8", "pe_array.pes=0", "mapping.tile_m=4",
                                     "pe_array.cycles_per_block_pair.fp8xfp8=18014398509481984", "nope=1",
                                     "memory.glb.size_bytes=64", "aqu.enabled=false", "=", "a.b.c"]), max_size=2)
    simulate = st.builds(lambda a, s, e, o: ["simulate", "--trace", "{trace}", "--arch", a,
                                             *[x for item in s for x in ("--set", item)], "--engine", e, *o],
                         arch, sets, st.sampled_from(["tile", "analytic", "reference", "event", "magic"]),
                         st.one_of(st.just([]), out_file.map(lambda o: ["--out", o])))
    gemm = st.builds(lambda m, k, n, extra, o: ["trace", "gemm", "--m", m, "--k", k, "--n", n, *extra, "--out", o],
                     number, number, number,
                     st.lists(st.sampled_from([["--repeat", "1099511627776"], ["--fp4-fraction", "1.5"],
                                               ["--fp4-fraction", "nan"], ["--seed", "-1"], ["--block-size", "0"],
                                               ["--repeat", "3"], ["--max-op-map-blocks", "10"]]), max_size=2)
                     .map(lambda groups: [x for g in groups for x in g]), out_dir)
    show = st.builds(lambda d, a: ["trace", "show", d, "--arch", a],
                     st.sampled_from(["{trace}", "{tmp}", "{tmp}/missing", "{tmp}/file.txt", "/proc/self"]), arch)
    words = st.lists(st.one_of(st.sampled_from(["simulate", "trace", "gemm", "show", "--out", "--set", "--debug"]),
                               st.text(max_size=12)), max_size=6)
    return st.one_of(simulate, gemm, show, words).map(lambda argv: {"argv": argv})


STRATEGIES = {"arch_yaml": arch_yaml_cases, "overrides": overrides_cases, "manifest": manifest_cases,
              "maps": maps_cases, "cli": cli_cases}

# --- running ------------------------------------------------------------------------------------------------------


@dataclass
class Tally:
    """Outcomes per family, and the first failures with their payloads."""

    counts: dict[str, Counter] = field(default_factory=lambda: {family: Counter() for family in FAMILIES})
    failures: list[tuple[str, Outcome, str]] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, family: str, payload: Any, outcome: Outcome) -> None:
        self.counts[family][outcome.status] += 1
        if outcome.status in FAILURES and len(self.failures) < 50:
            self.failures.append((family, outcome, repr(payload)[:400]))

    @property
    def failed(self) -> int:
        return sum(c[s] for c in self.counts.values() for s in FAILURES)

    def table(self) -> list[str]:
        lines = ["| family | cases | typed error naming a field | valid result (sanity checks pass) | untyped error "
                 "| silently wrong (sanity check failed) | hang (timeout) | worker crash |",
                 "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for family in (*FAMILIES, "all"):
            c = sum(self.counts.values(), Counter()) if family == "all" else self.counts[family]
            name = "**all**" if family == "all" else f"`{family}`"
            lines.append(f"| {name} | {sum(c.values()):,} | {c[TYPED]:,} | {c[VALID]:,} | {c[UNTYPED]:,} | "
                         f"{c[INSANE]:,} | {c[HANG]:,} | {c[CRASH]:,} |")
        return lines


def _run_family(family: str, strategy: st.SearchStrategy[dict[str, Any]], examples: int, seed_value: int,
                worker: Worker, tally: Tally) -> None:
    """Generate ``examples`` payloads (no shrinking: every outcome is counted, failures are kept with their
    payload) and run each in the worker."""
    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @seed(seed_value)
    @given(strategy)
    def one(payload: dict[str, Any]) -> None:
        tally.add(family, payload, worker.run(family, payload))

    one()


def run_fuzz(examples_per_family: int, seed_value: int = 0, families: tuple[str, ...] = FAMILIES,
             timeout_s: float = TIMEOUT_S, memory_bytes: int = MEMORY_BYTES, progress: bool = False) -> Tally:
    """Run ``examples_per_family`` hypothesis cases of each family in one capped worker; returns the tally."""
    tally = Tally()
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fgmpsim-fuzz-") as scratch:
        fixture = Fixture(Path(scratch))
        worker = Worker(scratch, memory_bytes, timeout_s)
        try:
            for family in families:
                _run_family(family, STRATEGIES[family](fixture), examples_per_family, seed_value, worker, tally)
                if progress:
                    c = tally.counts[family]
                    print(f"{family}: {sum(c.values()):,} cases, {dict(c)}", file=sys.stderr, flush=True)
        finally:
            worker.close()
    tally.seconds = time.monotonic() - start
    return tally


def write_report(path: Path, tally: Tally, faults: dict[str, int], command: str) -> None:
    """Replace the block between the fuzz markers of ``path`` with the counts of this run."""
    from fgmpsim.io.atomic import atomic_write

    block = [REPORT_BEGIN, "", "```", command, "```", "",
             f"{sum(sum(c.values()) for c in tally.counts.values()):,} fuzzed inputs in {tally.seconds / 60:.1f} "
             f"min (one worker, {MEMORY_BYTES // 2**30} GiB address-space cap, {TIMEOUT_S:g} s per case):", "",
             *tally.table(), "",
             f"Faults injected: {faults['kills']} SIGKILLs of a process rewriting a result file, "
             f"{faults['failed_writes']} failed writes (simulated full disk); results found truncated or lost: "
             f"{faults['lost']}.", ""]
    if tally.failures:
        block += ["First failures:", ""] + [f"- `{family}` {outcome.status}: {outcome.detail}"
                                             for family, outcome, _ in tally.failures[:20]] + [""]
    block.append(REPORT_END)
    text = path.read_text() if path.exists() else f"{REPORT_BEGIN}\n{REPORT_END}\n"
    head, _, rest = text.partition(REPORT_BEGIN)
    _, _, tail = rest.partition(REPORT_END)
    atomic_write(path, (head + "\n".join(block) + tail).encode())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fgmpsim.testing.fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=20000, help="cases in all, split evenly over the families")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kills", type=int, default=24, help="SIGKILLs of a process rewriting a result file")
    parser.add_argument("--report", default="docs/reliability.md",
                        help="Markdown file whose fuzz block is rewritten ('' for none)")
    args = parser.parse_args(argv)
    from fgmpsim.testing.faults import failed_writes, kill_during_save

    per_family = max(1, args.examples // len(FAMILIES))
    tally = run_fuzz(per_family, args.seed, progress=True)
    with tempfile.TemporaryDirectory(prefix="fgmpsim-faults-") as scratch:
        lost = kill_during_save(Path(scratch), args.kills, args.seed)
        lost += failed_writes(Path(scratch), 4)
    faults = {"kills": args.kills, "failed_writes": 4, "lost": lost}
    print("\n".join(tally.table()))
    print(json.dumps(faults))
    for family, outcome, payload in tally.failures[:20]:
        print(f"FAIL {family} {outcome.status}: {outcome.detail}\n  payload {payload}")
    if args.report:
        command = f"python -m fgmpsim.testing.fuzz --examples {args.examples} --seed {args.seed} --kills {args.kills}"
        write_report(Path(args.report), tally, faults, command)
        print(f"wrote {args.report}")
    return 1 if tally.failed or lost else 0


if __name__ == "__main__":
    raise SystemExit(main())
