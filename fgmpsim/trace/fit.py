"""Fit the synthetic-map model (:mod:`fgmpsim.trace.synth_model`) to a real trace, with numpy only.

* **Fixed roles**: a role whose every map is all-FP8 or every map all-FP4 (e.g. softmax output kept in FP8, an
  unquantized lm_head) is not decided by the policy; it keeps that fraction and stays out of its class's fraction.
* **Relative fractions**: ``fp8_scale = role FP8 fraction / class FP8 fraction`` (a map read by several ops counts
  once per op, as in :func:`~fgmpsim.trace.stats.class_fp4_fractions`; half a block of pseudo-count keeps a role
  with no FP8 block at a small positive scale).
* **Depth profile**: the per-layer log FP8 fraction (centered on its mean over layers) of the first and the last
  layer as they are, and of the layers between them by least squares on piecewise-linear hat functions at
  ``knots`` evenly spaced relative depths; ``layer_sigma`` is the residual standard deviation of those layers.
* **Row/column effects**: ``row_sigma`` and ``col_sigma`` of a role are chosen by simulated moments: the model's
  maps with the same shapes and FP8 counts as the role's real maps must reproduce their mean standard deviation
  of per-row and of per-column FP8 fractions (alternating bisection, fixed simulation seeds). Unlike raw fraction
  spreads, these logit-scale effect sizes do not depend on the map's size, so they carry over from SmolLM2 to
  larger models.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from fgmpsim.errors import TraceError
from fgmpsim.trace.record import Trace, materialize_map
from fgmpsim.trace.stats import distinct_maps, map_table, row_col_fractions
from fgmpsim.trace.synth_model import CLASSES, ROLE_CLASS, RoleParams, SynthParams
from fgmpsim.trace.synthetic_map import SyntheticMap

PROFILE_KNOTS = 5
SIGMA_MAX = 8.0
"""Largest effect size searched, in logit units (a column effect of 8 sigma makes FP8 all but certain)."""
_BISECTION_STEPS = 14
_ROUNDS = 3


def fit_synth_params(trace: Trace, knots: int = PROFILE_KNOTS) -> SynthParams:
    """Fitted :class:`SynthParams` for every role present in ``trace`` (a Llama-style export)."""
    table = map_table(trace)
    table = table[table["role"].notna()]
    if table.empty:
        raise TraceError(f"trace {trace.name!r} has no Llama-style ops (q_proj ... down_proj, attn_qk, attn_pv, "
                         "lm_head)", "ops", "fit on a trace made by fgmpsim export")
    fractions = table["fp8_blocks"] / table["blocks"]
    fixed = {role: float(f.iloc[0]) for role, f in fractions.groupby(table["role"])
             if f.iloc[0] in (0.0, 1.0) and (f == f.iloc[0]).all()}
    free = table[~table["role"].isin(list(fixed))]
    class_sums = free.groupby("cls")[["fp8_blocks", "blocks"]].sum()
    class_fp8 = {cls: row.fp8_blocks / row.blocks for cls, row in class_sums.iterrows()}
    for cls in CLASSES:
        if not class_fp8.get(cls):
            raise TraceError(f"trace {trace.name!r} has no mixed-precision map with an FP8 block in its {cls} "
                             "class", "ops", "fit on a mixed-precision trace (e.g. fgmp at fp4_fraction 0.7)")
    maps = _maps_by_role(trace)
    roles: dict[str, RoleParams] = {}
    for role, rows in table.groupby("role"):
        if role in fixed:
            roles[role] = RoleParams(fixed_fp8_fraction=fixed[role])
            continue
        scale = (rows["fp8_blocks"].sum() + 0.5) / (rows["blocks"].sum() + 1.0) / class_fp8[ROLE_CLASS[role]]
        per_layer = rows.groupby("layer")[["fp8_blocks", "blocks"]].sum()
        log_fraction = np.log((per_layer["fp8_blocks"] + 0.5) / (per_layer["blocks"] + 1.0)).to_numpy()
        first, last, profile, sigma = _depth_profile(per_layer.index.to_numpy(), log_fraction, knots)
        row_sigma, col_sigma = fit_effects(maps[role])
        roles[role] = RoleParams(fp8_scale=_round(scale), first_layer=_round(first), last_layer=_round(last),
                                 layer_profile=tuple(_round(v) for v in profile), layer_sigma=_round(sigma),
                                 row_sigma=_round(row_sigma), col_sigma=_round(col_sigma))
    meta = trace.meta
    source = {"trace": trace.name, "model": meta.get("model"), "policy": meta.get("policy"),
              "class_fp4_fraction": {cls: _round(1.0 - v) for cls, v in class_fp8.items()},
              "fitted_by": "fgmpsim.trace.fit.fit_synth_params", "profile_knots": knots}
    return SynthParams(roles=dict(sorted(roles.items(), key=lambda kv: list(ROLE_CLASS).index(kv[0]))),
                       source=source)


def fit_effects(maps: Sequence[np.ndarray]) -> tuple[float, float]:
    """``(row_sigma, col_sigma)`` of the model whose maps, at the shapes and FP8 counts of ``maps``, match their
    mean spread of per-row and per-column FP8 fractions (see the module docstring). All-FP4 and all-FP8 maps say
    nothing about structure and are skipped; ``(0, 0)`` if nothing is left."""
    mixed = [bits for bits in maps if 0 < np.count_nonzero(bits) < bits.size]
    if not mixed:
        return 0.0, 0.0
    counts = [int(np.count_nonzero(bits)) for bits in mixed]
    row_target, col_target = np.mean([[v.std() for v in row_col_fractions(bits)] for bits in mixed], axis=0)

    def spreads(row_sigma: float, col_sigma: float) -> np.ndarray:
        models = (SyntheticMap(bits.shape, count, 0, f"fit/{i}", row_sigma, col_sigma).materialize()
                  for i, (bits, count) in enumerate(zip(mixed, counts)))
        return np.mean([[v.std() for v in row_col_fractions(model)] for model in models], axis=0)

    row_sigma = col_sigma = 0.0
    for _ in range(_ROUNDS):
        row_sigma = _bisect(lambda s: spreads(s, col_sigma)[0], row_target)
        col_sigma = _bisect(lambda s: spreads(row_sigma, s)[1], col_target)
    return row_sigma, col_sigma


def _maps_by_role(trace: Trace) -> dict[str, list[np.ndarray]]:
    out: dict[str, list[np.ndarray]] = {}
    for role, _, pmap in distinct_maps(trace):
        out.setdefault(role, []).append(materialize_map(pmap))
    return out


def _bisect(spread: Callable[[float], float], target: float) -> float:
    """Smallest effect size in [0, SIGMA_MAX] whose simulated spread reaches ``target`` (spread grows with it)."""
    low, high = 0.0, SIGMA_MAX
    if spread(low) >= target:
        return low
    if spread(high) <= target:
        return high
    for _ in range(_BISECTION_STEPS):
        mid = 0.5 * (low + high)
        low, high = (mid, high) if spread(mid) < target else (low, mid)
    return 0.5 * (low + high)


def _depth_profile(layers: np.ndarray, log_fraction: np.ndarray,
                   knots: int) -> tuple[float, float, np.ndarray, float]:
    """(first, last, inner knot values, residual std) of a role's per-layer log FP8 fractions, centered."""
    centered = log_fraction - log_fraction.mean()
    if layers.size < 3:
        return float(centered[0]), float(centered[-1]), np.zeros(0), 0.0
    inner, values = layers[1:-1], centered[1:-1]
    knots = min(knots, inner.size)
    depth = (inner - inner.min()) / max(inner.max() - inner.min(), 1)
    hats = np.maximum(0.0, 1.0 - np.abs(depth[:, None] * (knots - 1) - np.arange(knots)[None, :]))
    coef, *_ = np.linalg.lstsq(hats, values, rcond=None)
    residual = values - hats @ coef
    dof = inner.size - knots
    sigma = float(np.sqrt(residual @ residual / dof)) if dof > 0 else 0.0
    return float(centered[0]), float(centered[-1]), coef, sigma


def _round(value: float) -> float:
    """Fitted numbers are stored with 4 significant digits (more would be noise)."""
    return float(f"{float(value):.4g}")
