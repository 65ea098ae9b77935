"""The online activation decision (AQU) against a hand-worked example (numpy only)."""

from __future__ import annotations

import numpy as np
import pytest

from fgmpsim.quant.aqu_policy import ActivationRule, activation_block_scores, aqu_decide, aqu_quantize


def _row() -> np.ndarray:
    """Two 16-blocks. Tensor amax 448, so the FP8 tensor scale is exactly 1 (plain E4M3 rounding).

    Block 0 = [448, 0...]: NVFP4 maps 448 onto E2M1's 6 (block scale E4M3(448) * tensor scale 1/6) -> 448 both ways.
    Block 1 = [3, 1, 0.6, 0...]: NVFP4 block scale 3/6 = 0.5 gives 3, 1, 0.5 (0.6/0.5 = 1.2 rounds to 1);
    E4M3 gives 3, 1, 0.625 (0.6 lies between 0.5625 and 0.625). The only difference is 0.125 at channel 18.
    """
    x = np.zeros(32, dtype=np.float32)
    x[0] = 448.0
    x[16:19] = [3.0, 1.0, 0.6]
    return x


def test_hand_example_scores_only_the_element_that_formats_disagree_on():
    fisher = np.ones(32)
    fisher[18] = 2.0
    scores = activation_block_scores(_row(), fisher)
    np.testing.assert_allclose(scores, [0.0, 2.0 * 0.125 ** 2], atol=1e-9)


@pytest.mark.parametrize(("f18", "expected"), [(2.0, [False, True]), (0.5, [False, False])])
def test_hand_example_decision_follows_fisher_against_the_threshold(f18, expected):
    fisher = np.ones(32)
    fisher[18] = f18  # score 0.03125 or 0.0078125 against threshold 0.01
    np.testing.assert_array_equal(aqu_decide(_row()[None], fisher, threshold=0.01), [expected])


def test_quantized_row_takes_each_block_from_its_chosen_format():
    fisher = np.full(32, 2.0)
    out, fp8_map = aqu_quantize(_row(), fisher, threshold=0.01)
    np.testing.assert_array_equal(fp8_map, [False, True])
    np.testing.assert_allclose(out[:16], _row()[:16], rtol=1e-6)          # NVFP4 block: 448 survives
    np.testing.assert_array_equal(out[16:19], np.float32([3.0, 1.0, 0.625]))  # FP8 block: E4M3 values


def test_uniform_and_random_rules():
    x = np.random.default_rng(0).standard_normal((64, 32)).astype(np.float32)
    _, all_fp8 = ActivationRule("fp8").quantize(x)
    _, all_fp4 = ActivationRule("fp4").quantize(x)
    assert all_fp8.shape == (64, 2) and all_fp8.all() and not all_fp4.any()
    draw = [ActivationRule("random", fp4_fraction=0.75, rng=np.random.default_rng(3)).quantize(x)[1]
            for _ in range(2)]
    np.testing.assert_array_equal(draw[0], draw[1])
    assert 0.6 < 1 - draw[0].mean() < 0.9
