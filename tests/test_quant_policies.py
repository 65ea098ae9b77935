"""Policies: registry, achieved fractions, and FGMP's block choice against the baselines (numpy only)."""

from __future__ import annotations

import numpy as np
import pytest

from fgmpsim.errors import PolicyError
from fgmpsim.formats import fake_quant
from fgmpsim.quant.calibration import ActivationSamples
from fgmpsim.quant.defaults import DEFAULT_POLICIES, POLICY_NAMES
from fgmpsim.quant.policies import POLICIES, WeightQuantizer, activation_rules, get_policy
from fgmpsim.quant.scores import weighted_block_error


@pytest.fixture(scope="module")
def quantizer() -> WeightQuantizer:
    rng = np.random.default_rng(0)
    shapes = {"l0.q": (48, 64), "l0.down": (64, 128), "l1.q": (48, 64)}
    weights = {n: (rng.standard_t(4, s) * 0.03).astype(np.float32) for n, s in shapes.items()}
    # Fisher varies by orders of magnitude across layers and channels, as in real models
    fisher = {n: rng.random(s) ** 3 * 10.0 ** rng.integers(-3, 1, (1, s[1])) for n, s in shapes.items()}
    return WeightQuantizer(weights, fisher)


def _perturbation(quantizer: WeightQuantizer, weights: dict[str, np.ndarray], weighted: bool) -> float:
    """Sum over all blocks of (Fisher-weighted) squared distance from the all-FP8 weights."""
    return sum(weighted_block_error(weights[n], fake_quant(w, "fp8_e4m3_tensor"),
                                    quantizer.fisher[n] if weighted else 1.0, 16).sum()
               for n, w in quantizer.weights.items())


def test_unknown_policy_lists_the_known_ones():
    with pytest.raises(PolicyError, match="fgmp_no_clip") as err:
        get_policy("fgmq")
    assert err.value.field == "policy"


@pytest.mark.parametrize("name", ["fgmp", "fgmp_no_clip", "mse", "random"])
@pytest.mark.parametrize("fraction", [0.25, 0.7, 0.9])
def test_mixed_policies_hit_the_weight_fraction_within_one_block(quantizer, name, fraction):
    plan = quantizer.plan(get_policy(name), fraction)
    total = sum(m.size for m in plan.fp8_maps.values())
    assert abs(plan.fp4_fraction - fraction) * total <= 1.0
    for n, w in quantizer.weights.items():
        assert plan.weights[n].shape == w.shape and plan.fp8_maps[n].shape == (w.shape[0], w.shape[1] // 16)


def test_uniform_policies_ignore_the_fraction(quantizer):
    assert quantizer.plan(get_policy("fp8"), 0.7).fp4_fraction == 0.0
    assert quantizer.plan(get_policy("nvfp4"), 0.7).fp4_fraction == 1.0
    zq = quantizer.plan(get_policy("zqfp_w4a8:g16"), 0.7)
    assert zq.fp4_fraction == 1.0
    assert quantizer.plan(get_policy("w8a8_fp8"), 0.7).fp4_fraction == 0.0


@pytest.mark.parametrize("fraction", [0.5, 0.7, 0.9])
def test_fisher_choice_perturbs_the_loss_estimate_least(quantizer, fraction):
    """With the same NVFP4 quantizer, FGMP's choice minimizes sum F*(W_mixed - W_fp8)^2 by construction, and the
    unweighted choice minimizes the unweighted sum: each beats the others on its own objective."""
    fgmp = quantizer.plan(get_policy("fgmp_no_clip"), fraction).weights
    mse = quantizer.plan(get_policy("mse"), fraction).weights
    rand = quantizer.plan(get_policy("random"), fraction, seed=3).weights
    assert _perturbation(quantizer, fgmp, True) < _perturbation(quantizer, mse, True)
    assert _perturbation(quantizer, fgmp, True) < _perturbation(quantizer, rand, True)
    assert _perturbation(quantizer, mse, False) < _perturbation(quantizer, fgmp, False)
    assert _perturbation(quantizer, mse, False) < _perturbation(quantizer, rand, False)


@pytest.mark.parametrize("fraction", [0.5, 0.7, 0.9])
def test_full_fgmp_has_the_least_fisher_weighted_error_against_the_original_weights(quantizer, fraction):
    """The issue's claim for the shipped policy: with clipping, FGMP's mixed weights are closest to the original ones
    in the Fisher metric; clipping adds to the by-construction margin of the block choice (sum F*(W_mixed - W)^2)."""
    def error(name: str) -> float:
        mixed = quantizer.plan(get_policy(name), fraction, seed=3).weights
        return sum(weighted_block_error(mixed[n], w, quantizer.fisher[n], 16).sum()
                   for n, w in quantizer.weights.items())

    assert error("fgmp") < error("fgmp_no_clip") < error("mse") < error("random")


def test_clipped_fp4_blocks_never_have_more_fisher_weighted_error(quantizer):
    for n, w in quantizer.weights.items():
        f = quantizer.fisher[n]
        clipped = weighted_block_error(quantizer.fp4(n, get_policy("fgmp")), w, f, 16)
        amax = weighted_block_error(quantizer.fp4(n, get_policy("fgmp_no_clip")), w, f, 16)
        assert (clipped <= amax).all()


def test_activation_rules_share_one_calibrated_threshold():
    site_fisher = {"a": np.ones(32), "b": np.full(64, 3.0)}
    samples = ActivationSamples(scores={"fisher": np.arange(100.0), "unweighted": np.arange(100.0) * 2}, sequences=1)
    fgmp = activation_rules(get_policy("fgmp"), 0.7, site_fisher, samples)
    mse = activation_rules(get_policy("mse"), 0.7, site_fisher, samples)
    assert {r.threshold for r in fgmp.values()} == {69.0}
    assert {r.threshold for r in mse.values()} == {138.0}
    np.testing.assert_array_equal(fgmp["b"].fisher, site_fisher["b"])
    np.testing.assert_array_equal(mse["b"].fisher, np.ones(64))
    zq = activation_rules(get_policy("zqfp_w4a8"), 0.7, site_fisher, None).values()
    assert {(r.kind, r.token_format) for r in zq} == {("token", "fp8_e4m3_block")}
    with pytest.raises(PolicyError):
        activation_rules(get_policy("fgmp"), 1.2, site_fisher, samples)


def test_every_policy_is_registered_under_its_name():
    assert set(POLICIES) == {"fp8", "nvfp4", "fgmp", "fgmp_no_clip", "mse", "random", "zqfp_w4a8", "int_w4a8",
                             "w8a8_fp8", "w8a8_int8"}
    assert tuple(POLICIES) == POLICY_NAMES  # the CLI lists the leaf module's names without importing the policies
    assert all(get_policy(n) for n in DEFAULT_POLICIES)
    assert all(get_policy(n).name.partition(":")[0] == n for n in POLICIES)
    assert all(get_policy(get_policy(n).name) == get_policy(n) for n in POLICIES)  # full names parse back
