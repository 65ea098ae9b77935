"""Numbers with units scaled to their magnitude (mJ or J, MiB or GiB), for tables and plot axes.

A *quantity kind* names the base unit of a metric column: ``"energy_pj"`` (pJ), ``"bytes"``, ``"seconds"``,
``"power_w"``, ``"cycles"``, ``"count"``; :data:`METRIC_KIND` maps the comparison's metric columns to their kind.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

_LADDERS: dict[str, tuple[tuple[float, str], ...]] = {
    # (base units per displayed unit, displayed unit), smallest first
    "energy_pj": ((1.0, "pJ"), (1e3, "nJ"), (1e6, "uJ"), (1e9, "mJ"), (1e12, "J"), (1e15, "kJ")),
    "bytes": ((1.0, "B"), (2.0 ** 10, "KiB"), (2.0 ** 20, "MiB"), (2.0 ** 30, "GiB"), (2.0 ** 40, "TiB")),
    "seconds": ((1e-9, "ns"), (1e-6, "us"), (1e-3, "ms"), (1.0, "s")),
    "power_w": ((1e-6, "uW"), (1e-3, "mW"), (1.0, "W"), (1e3, "kW")),
    "cycles": ((1.0, "cycles"), (1e6, "Mcycles"), (1e9, "Gcycles")),
    "count": ((1.0, ""), (1e3, "k"), (1e6, "M"), (1e9, "G")),
    "j_per_token": ((1e-9, "nJ/token"), (1e-6, "uJ/token"), (1e-3, "mJ/token"), (1.0, "J/token")),
    "tokens_per_s": ((1.0, "tokens/s"), (1e3, "k tokens/s"), (1e6, "M tokens/s")),
}


def scale_for(values: float | Iterable[float], kind: str) -> tuple[float, str]:
    """(divisor, unit) that shows the largest finite magnitude of ``values`` as a number >= 1 (or the smallest
    unit); a kind without a ladder (``"mm2"``, ``"pj_per_mac"``, ...) is shown as it is, with that name as unit."""
    ladder = _LADDERS.get(kind)
    if ladder is None:
        return 1.0, _PLAIN_UNITS.get(kind, kind)
    vals = [abs(float(v)) for v in ([values] if isinstance(values, (int, float)) else values)]
    peak = max((v for v in vals if math.isfinite(v)), default=0.0)
    divisor, unit = ladder[0]
    for step, name in ladder:
        if peak >= step:
            divisor, unit = step, name
    return divisor, unit


def _number(value: float, digits: int) -> str:
    if value == 0:
        return "0"
    return f"{value:,.{max(digits - 1 - int(math.floor(math.log10(abs(value)))), 0)}f}"


def _missing(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def format_row(values: Iterable[float | None], kind: str, digits: int = 4) -> tuple[str, list[str]]:
    """One unit for a table row (scaled to the row's largest value) and each value in it: ``("mJ", ["38.41",
    "30.54"])``; cycles keep all digits with separators, fractions are percentages, missing values ``"-"``."""
    values = list(values)
    if kind == "fraction":
        return "%", ["-" if _missing(v) else f"{100 * v:.1f}" for v in values]
    if kind == "cycles":
        return "cycles", ["-" if _missing(v) else f"{int(v):,}" for v in values]
    divisor, unit = scale_for([v for v in values if not _missing(v)], kind)
    return unit, ["-" if _missing(v) else _number(v / divisor, digits) for v in values]


def format_quantity(value: float, kind: str, digits: int = 4) -> str:
    """``value`` (in the kind's base unit) as ``"30.54 mJ"`` with ``digits`` significant digits; ``"-"`` for
    a missing value (NaN or None)."""
    if _missing(value):
        return "-"
    if kind == "fraction":
        return f"{100 * value:.1f}%"
    if kind == "cycles" and float(value).is_integer():
        return f"{int(value):,}"
    divisor, unit = scale_for(value, kind)
    return f"{_number(value / divisor, digits)} {unit}".rstrip()


def format_change(rel: float) -> str:
    """A relative change as ``"-26.4%"`` / ``"+3.1%"``; ``"0"`` for none, ``"-"`` if undefined."""
    if rel is None or not math.isfinite(rel):
        return "-"
    return "0" if rel == 0 else f"{100 * rel:+.1f}%"


_PLAIN_UNITS = {"mm2": "mm^2", "pj_per_mac": "pJ/MAC", "fraction": "%", "perplexity": "", "bits": "bits/element"}

METRIC_KIND: dict[str, str] = {
    "energy_pj": "energy_pj", "pj_per_mac": "pj_per_mac", "cycles": "cycles", "seconds": "seconds",
    "utilization": "fraction", "tokens_per_s": "tokens_per_s", "j_per_token": "j_per_token", "power_w": "power_w",
    "weight_bytes": "bytes", "weight_bits_per_element": "bits", "area_mm2": "mm2", "perplexity": "perplexity",
    "macs": "count",
}
"""Metric column -> quantity kind (``energy_<component>_pj`` columns are ``energy_pj`` too, see :func:`kind_of`)."""


def kind_of(metric: str) -> str:
    """The quantity kind of a metric column."""
    if metric.startswith("energy_") and metric.endswith("_pj"):
        return "energy_pj"
    if metric.startswith("area_") and metric.endswith("_mm2"):
        return "mm2"
    return METRIC_KIND.get(metric, "count")


def axis_label(metric: str, values: Iterable[float], name: str | None = None) -> tuple[float, str]:
    """(divisor, axis label with unit) for plotting ``metric`` over ``values``, e.g. ``(1e9, "energy (mJ)")``."""
    kind = kind_of(metric)
    divisor, unit = scale_for(list(values), kind)
    if kind == "fraction":
        divisor, unit = 0.01, "%"
    label = name or metric.removesuffix("_pj").removesuffix("_mm2").replace("_", " ")
    return divisor, f"{label} ({unit})" if unit else label


_LABELS = {"energy_pj": "energy", "pj_per_mac": "energy per MAC", "macs": "MACs", "cycles": "cycles",
           "seconds": "time", "utilization": "utilization", "tokens_per_s": "throughput",
           "j_per_token": "energy per token", "power_w": "average power", "weight_bytes": "weight memory",
           "weight_bits_per_element": "weight bits", "area_mm2": "area", "perplexity": "perplexity"}


def metric_label(metric: str) -> str:
    """A metric column in words (``weight_bytes`` -> ``weight memory``); a component of energy or area is its
    name indented under the total (``energy_dram_pj`` -> ``"  dram"``)."""
    if metric in _LABELS:
        return _LABELS[metric]
    if kind_of(metric) == "energy_pj":
        return "  " + metric.removeprefix("energy_").removesuffix("_pj")
    if kind_of(metric) == "mm2":
        return "  " + metric.removeprefix("area_").removesuffix("_mm2")
    return metric.replace("_", " ")
