"""Pareto fronts of design points: the rows no other row beats in every objective."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from fgmpsim.errors import ConfigError


def pareto_mask(frame: pd.DataFrame, objectives: Sequence[str], maximize: Sequence[str] = ()) -> np.ndarray:
    """Boolean mask of ``frame``'s non-dominated rows over ``objectives`` (minimized, except those in
    ``maximize``). A row is dominated if another is no worse in every objective and better in one; rows with a
    missing objective are never on the front. Exact duplicates of a front point are all kept."""
    missing = [c for c in objectives if c not in frame.columns]
    if missing or not objectives:
        raise ConfigError(f"no objective column(s) {', '.join(missing) or '(none given)'}", "objectives",
                          f"use columns of the frame: {', '.join(map(str, frame.columns))}")
    values = frame[list(objectives)].to_numpy(np.float64).copy()
    for i, name in enumerate(objectives):
        if name in maximize:
            values[:, i] = -values[:, i]
    valid = np.isfinite(values).all(axis=1)
    mask = np.zeros(len(frame), dtype=bool)
    # O(n^2) over points: fronts are drawn from sweeps of at most thousands of points
    for i in np.flatnonzero(valid):
        others = values[valid]
        dominated = ((others <= values[i]).all(axis=1) & (others < values[i]).any(axis=1)).any()
        mask[i] = not dominated
    return mask


def pareto_front(frame: pd.DataFrame, objectives: Sequence[str], maximize: Sequence[str] = ()) -> pd.DataFrame:
    """The non-dominated rows of ``frame`` (see :func:`pareto_mask`), sorted by the first objective."""
    return frame[pareto_mask(frame, objectives, maximize)].sort_values(list(objectives)[0])
