"""Fake-quantized forward and policy evaluation on the tiny Llama."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fgmpsim.formats import fake_quant  # noqa: E402
from fgmpsim.quant.aqu_policy import ActivationRule  # noqa: E402
from fgmpsim.quant.fakequant import fake_quantized  # noqa: E402
from fgmpsim.quant.perplexity import perplexity  # noqa: E402
from fgmpsim.quant.pipeline import calibrate_model, evaluate_policy  # noqa: E402
from fgmpsim.quant.policies import POLICIES, get_policy  # noqa: E402

pytestmark = pytest.mark.model


class _TwoReaders(torch.nn.Module):
    """Two linears reading the same tensor (like k_proj and v_proj)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a = torch.nn.Linear(32, 8, bias=False)
        self.b = torch.nn.Linear(32, 4, bias=True)

    def forward(self, x):
        return self.a(x), self.b(x)


def test_fp8_wrapper_equals_quantized_input_per_sequence_times_quantized_weight():
    net = _TwoReaders()
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((2, 5, 32)).astype(np.float32))
    x[1] *= 50.0  # a second sequence on another scale: its tensor scale must be its own
    w8 = {n: fake_quant(getattr(net, n).weight.detach().numpy(), "fp8_e4m3_tensor") for n in ("a", "b")}
    with fake_quantized(net, w8, {"a": ActivationRule("fp8")}, {"a": "a", "b": "a"}) as sites, torch.no_grad():
        ya, yb = net(x)
    xq = np.stack([fake_quant(seq, "fp8_e4m3_tensor") for seq in x.numpy()])
    np.testing.assert_allclose(ya.numpy(), xq @ w8["a"].T, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(yb.numpy(), xq @ w8["b"].T + net.b.bias.detach().numpy(), rtol=1e-5, atol=1e-5)
    assert sites["a"].blocks == 2 * 5 * 2  # the shared input is quantized (and counted) once
    assert isinstance(net.a, torch.nn.Linear) and isinstance(net.b, torch.nn.Linear)  # restored


@pytest.fixture(scope="module")
def calibrated(tiny_llama, tiny_tokens):
    return calibrate_model(tiny_llama, tiny_tokens, tiny_tokens[:4], progress=False)


def test_every_policy_runs_and_hits_its_fractions(calibrated):
    weight_blocks = sum(m.weight.numel() // 16 for m in calibrated.linears.values())
    recipes = ("zqfp_w4a8:m2+gptq+g16+lorc4", "zqfp_w4a8:none+rtn+g32", "int_w4a8:gptq+g16", "w8a8_fp8",
               "w8a8_int8")
    for policy in [p for p in POLICIES.values() if p.recipe is None] + [get_policy(r) for r in recipes]:
        ev = evaluate_policy(calibrated, policy, 0.7, progress=False)
        assert math.isfinite(ev.perplexity)
        want = 0.7 if policy.uses_fraction else float(policy.weights == "fp4")
        assert abs(ev.weight_plan.fp4_fraction - want) * weight_blocks <= 1.0
        if policy.activations in ("fp8", "fp4"):
            assert ev.act_fp4_fraction == float(policy.activations == "fp4")
        else:  # thresholds come from the unquantized model, evaluation runs the quantized one
            assert abs(ev.act_fp4_fraction - 0.7) < 0.05


def test_evaluation_leaves_the_model_unchanged_and_records_maps(calibrated, tiny_llama, tiny_tokens):
    before = perplexity(tiny_llama, tiny_tokens[:4], progress=False)
    ev = evaluate_policy(calibrated, POLICIES["fgmp"], 0.5, progress=False, record_maps=True,
                         windows=tiny_tokens[:2])
    assert perplexity(tiny_llama, tiny_tokens[:4], progress=False) == before
    maps = ev.sites["model.layers.0.mlp.down_proj"].maps
    assert len(maps) == 2 and maps[0].shape == (32, 128 // 16) and maps[0].dtype == bool
