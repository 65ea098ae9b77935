"""The synthetic-map fitter: it recovers known parameters, and its fit reproduces the real SmolLM2 export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fgmpsim.errors import TraceError
from fgmpsim.trace import ModelShape, load_trace, synth_trace
from fgmpsim.trace.fit import fit_effects, fit_synth_params
from fgmpsim.trace.fit_report import compare_maps, shape_of, synthetic_twin
from fgmpsim.trace.synth_model import RoleParams, SynthParams, load_synth_params
from fgmpsim.trace.synthetic_map import SyntheticMap

REAL_TRACE = Path(__file__).resolve().parents[1] / "traces" / "smollm2-135m-fgmp70"
TOY = ModelShape("toy", hidden=512, intermediate=1024, layers=6, heads=8, kv_heads=2, head_dim=64, vocab=512)
TRUTH = SynthParams(roles={
    "q_proj": RoleParams(fp8_scale=0.5, row_sigma=1.0, col_sigma=0.5),
    "down_proj": RoleParams(fp8_scale=2.0, last_layer=-1.0, layer_profile=(0.6, -0.6), row_sigma=0.3, col_sigma=2.0),
    "mlp_in": RoleParams(fp8_scale=1.5, row_sigma=0.5, col_sigma=1.5),
    "pv_p": RoleParams(fixed_fp8_fraction=1.0),
    "lm_head": RoleParams(fixed_fp8_fraction=1.0),
    "lm_head_in": RoleParams(fixed_fp8_fraction=1.0),
})


@pytest.fixture(scope="module")
def toy_trace():
    return synth_trace(TOY, tokens=128, fp4_fraction=0.7, seed=11, params=TRUTH)


@pytest.fixture(scope="module")
def toy_fit(toy_trace):
    return fit_synth_params(toy_trace)


def test_fit_effects_recovers_row_and_column_effect_sizes():
    bits = SyntheticMap((1024, 64), 1024 * 64 * 3 // 10, seed=4, stream="truth", row_sigma=0.8,
                        col_sigma=2.0).materialize()
    row_sigma, col_sigma = fit_effects([bits])
    assert row_sigma == pytest.approx(0.8, abs=0.15)
    assert col_sigma == pytest.approx(2.0, rel=0.25)  # 64 columns: the sample sd of 64 normals is +-9 %


def test_fit_effects_of_an_unstructured_map_is_near_zero():
    bits = SyntheticMap((1024, 64), 20000, seed=4, stream="flat").materialize()
    assert max(fit_effects([bits])) < 0.25


def test_fit_recovers_fixed_roles_relative_fractions_and_profiles(toy_fit):
    roles = toy_fit.roles
    assert {r for r, p in roles.items() if p.fixed_fp8_fraction == 1.0} == {"pv_p", "lm_head", "lm_head_in"}
    # relative to the class mean; the ratio between two roles is what the truth fixes
    assert roles["down_proj"].fp8_scale / roles["q_proj"].fp8_scale == pytest.approx(4.0, rel=0.05)
    assert roles["mlp_in"].fp8_scale / roles["o_in"].fp8_scale == pytest.approx(1.5, rel=0.05)
    down = roles["down_proj"]  # truth: inner layers from +0.6 down to -0.6, the last layer at -1.0 (log scale)
    assert down.layer_profile[0] - down.layer_profile[-1] == pytest.approx(1.2, abs=0.05)
    assert down.last_layer - down.layer_profile[-1] == pytest.approx(-0.4, abs=0.05)
    assert down.first_layer - down.layer_profile[0] == pytest.approx(-0.6, abs=0.05)
    assert roles["q_proj"].layer_sigma < 0.1  # no scatter in the truth: only rounding remains
    assert roles["down_proj"].col_sigma == pytest.approx(2.0, rel=0.3)
    assert roles["mlp_in"].col_sigma == pytest.approx(1.5, rel=0.3)
    assert roles["q_proj"].row_sigma == pytest.approx(1.0, abs=0.3)


def test_fitted_params_survive_yaml(tmp_path, toy_fit):
    path = tmp_path / "params.yaml"
    path.write_text(toy_fit.to_yaml())
    assert load_synth_params(path).roles == toy_fit.roles


@pytest.mark.parametrize("text, field", [
    ("roles: {nope: {}}", "roles.nope"),
    ("roles: {q_proj: {fp8_scale: -1}}", "roles.q_proj.fp8_scale"),
    ("roles: {q_proj: {fixed_fp8_fraction: 2}}", "roles.q_proj.fixed_fp8_fraction"),
    ("roles: {q_proj: {colour: red}}", "roles.q_proj.colour"),
    ("roles: {q_proj: {layer_profile: [a]}}", "roles.q_proj.layer_profile"),
    ("[1, 2]", "roles"),
])
def test_bad_params_files_name_the_field(tmp_path, text, field):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(TraceError) as err:
        load_synth_params(path)
    assert err.value.field == field


def test_shipped_params_load_and_cover_every_role_of_a_llama_trace():
    params = load_synth_params()
    assert params.source.get("trace")
    assert {"q_proj", "down_proj", "attn_in", "down_in", "qk_k", "pv_v"} <= set(params.roles)


def test_fit_refuses_a_trace_without_fp8_blocks():
    with pytest.raises(TraceError, match="no mixed-precision map"):
        fit_synth_params(synth_trace(TOY, tokens=16, fp4_fraction=1.0, params=TRUTH))


@pytest.mark.skipif(not (REAL_TRACE / "manifest.yaml").exists(),
                    reason=f"the real SmolLM2 export {REAL_TRACE} has not been produced (fgmpsim export)")
def test_shipped_fit_reproduces_the_real_smollm2_export():
    """Tolerances: per-role FP8 fraction within 0.03 absolute (the twin draws its own layer-to-layer scatter,
    and each class is rescaled as a whole, so single roles move by up to ~0.02 between seeds); mean spread of
    per-row and per-column FP8 fractions within 20 % relative or 0.01 absolute (one effect size per role has to
    serve layers whose real clustering differs; seeds 0 and 1 stay within 16 %)."""
    real = load_trace(REAL_TRACE)
    twin = synthetic_twin(real, load_synth_params(), seed=0)
    assert shape_of(twin)[0].as_dict() | {"name": ""} == shape_of(real)[0].as_dict() | {"name": ""}
    table = compare_maps(real, twin)
    np.testing.assert_allclose(table["fp8_synth"], table["fp8_real"], atol=0.03)
    for kind in ("row", "col"):
        real_spread, synth_spread = table[f"{kind}_std_real"], table[f"{kind}_std_synth"]
        assert (np.abs(synth_spread - real_spread) <= np.maximum(0.2 * real_spread, 0.01)).all(), table


@pytest.mark.skipif(not (REAL_TRACE / "manifest.yaml").exists(),
                    reason=f"the real SmolLM2 export {REAL_TRACE} has not been produced (fgmpsim export)")
def test_shipped_params_are_what_fitting_the_shipped_trace_gives():
    """``fgmpsim/trace/synth_params.yaml`` is the output of its documented command (``fgmpsim trace fit
    traces/smollm2-135m-fgmp70``), so every synthetic-trace number follows from the shipped trace and the code."""
    refit = fit_synth_params(load_trace(REAL_TRACE))
    assert refit.roles == load_synth_params().roles


def test_layer_profile_puts_edges_at_the_first_and_last_layer_and_interpolates_between():
    role = RoleParams(first_layer=1.0, last_layer=2.0, layer_profile=(0.0, 1.0))
    np.testing.assert_allclose(role.log_layer_profile(5), [1.0, 0.0, 0.5, 1.0, 2.0])
    np.testing.assert_allclose(role.log_layer_profile(2), [1.0, 2.0])
    np.testing.assert_allclose(RoleParams(layer_profile=(0.3,)).log_layer_profile(4), [0.0, 0.3, 0.3, 0.0])


def test_fit_markdown_prints_each_roles_parameters_and_spreads(toy_trace, toy_fit):
    from fgmpsim.trace.fit_report import fit_markdown

    table = compare_maps(toy_trace, synthetic_twin(toy_trace, toy_fit))
    lines = fit_markdown(toy_fit, table).splitlines()
    assert len(lines) == 2 + len(table)
    rows = {line.split(" | ")[0].strip("| `"): line.split(" | ") for line in lines[2:]}
    down = toy_fit.role("down_proj")
    assert rows["down_proj"][6:8] == [f"{down.row_sigma:.2f}", f"{down.col_sigma:.2f}"]
    assert rows["down_proj"][1] == f"{table.loc['down_proj', 'fp8_real']:.3f}"
    assert rows["pv_p"][2] == "fixed 1"


def test_trace_fit_markdown_prints_the_table_alone_on_stdout(toy_trace, tmp_path, capsys):
    from fgmpsim.cli import main
    from fgmpsim.trace import save_trace

    save_trace(toy_trace, tmp_path / "toy")
    assert main(["trace", "fit", str(tmp_path / "toy"), "--out", str(tmp_path / "p.yaml"), "--markdown"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[0].startswith("| role | real FP8 |") and all(line.startswith("|") for line in out.splitlines())
    assert "wrote" in err and load_synth_params(tmp_path / "p.yaml").roles
