"""Block scores, global FP8 block selection and thresholds (numpy only)."""

from __future__ import annotations

import numpy as np
import pytest

from fgmpsim.errors import PolicyError
from fgmpsim.quant.scores import (fp8_block_count, quantile_threshold, random_fp8_blocks, select_fp8_blocks,
                                  weighted_block_error)


def test_weighted_block_error_sums_fisher_times_squared_difference_per_block():
    a = np.array([[1.0, 2.0, 3.0, 4.0]], dtype=np.float32)
    b = np.array([[0.0, 2.0, 1.0, 4.5]], dtype=np.float32)
    fisher = np.array([[2.0, 5.0, 0.5, 4.0]])
    # block 0: 2*1 + 5*0 = 2; block 1: 0.5*4 + 4*0.25 = 3
    np.testing.assert_array_equal(weighted_block_error(a, b, fisher, 2), [[2.0, 3.0]])


def test_select_keeps_the_highest_scores_across_tensors_and_reports_the_lowest_kept():
    scores = {"a": np.array([[3.0, 1.0], [2.0, 0.0]]), "b": np.array([[5.0, 1.5]])}
    maps, threshold = select_fp8_blocks(scores, fp4_fraction=0.5)  # 6 blocks -> 3 stay FP8: 5, 3, 2
    np.testing.assert_array_equal(maps["a"], [[True, False], [True, False]])
    np.testing.assert_array_equal(maps["b"], [[True, False]])
    assert threshold == 2.0


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.3, 0.5, 0.7, 0.93, 1.0])
def test_ties_cannot_move_the_achieved_fraction_by_more_than_one_block(fraction):
    rng = np.random.default_rng(1)
    # mostly zero scores (e.g. all-zero blocks) plus a few repeated values: heavy ties
    scores = {"x": np.where(rng.random((37, 11)) < 0.6, 0.0, rng.integers(0, 3, (37, 11)).astype(float)),
              "y": np.zeros((5, 7))}
    maps, _ = select_fp8_blocks(scores, fraction)
    total = sum(m.size for m in maps.values())
    fp4 = total - sum(int(m.sum()) for m in maps.values())
    assert abs(fp4 - fraction * total) <= 1.0


def test_fp8_block_count_rounds_to_the_nearest_block_and_rejects_bad_fractions():
    assert fp8_block_count(10, 0.7) == 3
    assert fp8_block_count(3, 0.5) in (1, 2)
    with pytest.raises(PolicyError, match="fp4_fraction"):
        fp8_block_count(10, 1.5)
    with pytest.raises(PolicyError):
        fp8_block_count(10, -0.1)


def test_random_blocks_hit_the_count_and_follow_the_seed():
    shapes = {"a": (10, 4), "b": (3, 6)}
    first = random_fp8_blocks(shapes, 0.75, np.random.default_rng(7))
    again = random_fp8_blocks(shapes, 0.75, np.random.default_rng(7))
    other = random_fp8_blocks(shapes, 0.75, np.random.default_rng(8))
    assert {n: m.shape for n, m in first.items()} == shapes
    assert sum(int(m.sum()) for m in first.values()) == 58 - round(0.75 * 58)
    assert all(np.array_equal(first[n], again[n]) for n in shapes)
    assert not all(np.array_equal(first[n], other[n]) for n in shapes)


def test_quantile_threshold_leaves_the_target_share_at_or_below_it():
    samples = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0])
    assert quantile_threshold(samples, 0.7) == 6.0  # 7 of 10 samples are <= 6 -> FP4; 7, 8, 9 go FP8
    assert quantile_threshold(samples, 1.0) == 9.0  # nothing scores above the maximum
    assert quantile_threshold(samples, 0.0) == -np.inf
