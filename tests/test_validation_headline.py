"""The headline's pieces: footprint arithmetic by hand, the tornado's re-pricing equal to re-simulating and to a
linear hand formula, and the stored headline files consistent with each other."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from fgmpsim.arch import load_arch
from fgmpsim.energy import ACTION_ENTRY, price_frame
from fgmpsim.sim import simulate
from fgmpsim.trace import gemm_trace, synth_trace
from fgmpsim.validation.headline import (ARCHS, compute_headline, footprint_table, load_headline,
                                         tornado_spans)

ROOT = Path(__file__).resolve().parents[1]


def test_footprint_by_hand_for_every_storage_choice():
    table = footprint_table(0.7)
    # 0.7 x (16*4 + 8)/16 + 0.3 x 8 + flag bits / 16 per element
    expected = [0.7 * 4.5 + 2.4 + 1 / 16, 0.7 * 4.5 + 2.4 + 2 / 16, 0.7 * 4.5 + 0.3 * 8.5 + 1 / 16,
                0.7 * (32 * 4 + 8) / 32 + 2.4 + 1 / 32]
    assert table["bits_per_element"].tolist() == pytest.approx(expected)
    assert table["saved_vs_fp8"].iloc[0] == pytest.approx(1 - 5.6125 / 8)   # the README's 29.8%


@pytest.mark.parametrize("entry", ["weight_buffer_read_bit", "mac_fp8xfp8", "aqu_block"])
def test_repricing_an_energy_override_equals_resimulating_with_it(entry):
    trace = gemm_trace(64, 256, 96, fp4_fraction=0.7, seed=3)
    shipped = simulate(trace, load_arch("fgmp")).to_frame()
    override = [f"energy.actions.{entry}.pj={2 * load_arch('fgmp').energy.pj(entry)!r}"]
    arch = load_arch("fgmp", override)
    resimulated = simulate(trace, arch).to_frame()
    assert price_frame(shipped, arch.energy)["energy_total_pj"].tolist() == pytest.approx(
        resimulated["energy_pj"].tolist(), rel=1e-12)


@pytest.fixture(scope="module")
def small_headline():
    return compute_headline(trace=synth_trace("smollm2-135m", tokens=16, fp4_fraction=0.7, seed=0))


def test_tornado_energy_rows_are_linear_in_the_entry(small_headline):
    # E(entry x f) = E + (f - 1) x pJ(entry) x (units counted of that entry), per arch: no shared pricing code
    trace = synth_trace("smollm2-135m", tokens=16, fp4_fraction=0.7, seed=0)
    frames = {name: simulate(trace, load_arch(name)).to_frame() for name in ARCHS}
    base = small_headline.summary.set_index("arch")["energy_pj"]
    rows = small_headline.tornado[small_headline.tornado["kind"] == "energy entry"]
    assert len(rows) == 2 * len(load_arch("fgmp").energy.entries)
    for _, row in rows.iterrows():
        entry = row["setting"].removeprefix("energy.actions.").removesuffix(".pj")
        for name, column in (("fgmp", "fgmp_energy_pj"), ("fp8_baseline", "fp8_energy_pj")):
            units = sum(frames[name][a].sum() for a, e in ACTION_ENTRY.items() if e == entry and a in frames[name])
            pj = load_arch(name).energy.pj(entry)
            assert row[column] == pytest.approx(base[name] + (row["factor"] - 1) * pj * units, rel=1e-9)
    assert (small_headline.tornado["saving"] == 1 - small_headline.tornado["fgmp_energy_pj"]
            / small_headline.tornado["fp8_energy_pj"]).all()


def test_structural_rows_resimulate_fgmp_only(small_headline):
    rows = small_headline.tornado[small_headline.tornado["kind"] == "structure"]
    base = small_headline.summary.set_index("arch")["energy_pj"]
    assert (rows["fp8_energy_pj"] == base["fp8_baseline"]).all()
    heavier = rows[rows["value"] == 8]   # FP8 blocks with an 8-bit scale move more bits: fgmp costs more
    assert (heavier["fgmp_energy_pj"] > base["fgmp"]).all()


def test_stored_headline_files_agree_with_each_other():
    stored = load_headline(ROOT)
    shipped = stored.tornado[stored.tornado["kind"] == "none"].iloc[0]
    e = stored.summary.set_index("arch")["energy_pj"]
    assert shipped["fgmp_energy_pj"] == pytest.approx(e["fgmp"])
    assert shipped["fp8_energy_pj"] == pytest.approx(e["fp8_baseline"])
    assert stored.saving() == pytest.approx(1 - e["fgmp"] / e["fp8_baseline"])
    spans = tornado_spans(stored)
    assert isinstance(spans, pd.DataFrame) and spans["span"].is_monotonic_decreasing
    assert set(spans["setting"]) >= {f"energy.actions.{n}.pj" for n, _ in load_arch("fgmp").energy.entries}
