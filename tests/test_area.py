"""Area model: hand-computed areas from the table entries, the FGMP overhead, iso-area overrides, bad tables."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

import fgmpsim
from fgmpsim.arch import ARCH_CONFIG_DIR, arch_from_dict, arch_to_dict, load_arch
from fgmpsim.energy import FGMP_OVERHEAD_COMPONENTS, area_breakdown, area_mm2, iso_area
from fgmpsim.errors import ConfigError

SMALL = ["pe_array.pes=2", "pe_array.lanes_per_pe=4", "memory.glb.size_bytes=65536",
         "memory.weight_buffer.size_bytes=4096", "memory.input_buffer.size_bytes=2048",
         "memory.accum_buffer.size_bytes=1024", "aqu.blocks_per_cycle=2"]


def _table() -> dict[str, float]:
    """The area entries as written in base.yaml, read without the loader."""
    data = yaml.safe_load((ARCH_CONFIG_DIR / "base.yaml").read_text())
    return {name: entry["mm2"] for name, entry in data["area"]["entries"].items()}


def test_small_fgmp_array_area_by_hand() -> None:
    t = _table()
    # 2 PEs x 4 lanes x 16-wide = 128 MACs, 8 lanes; GLB 64 KiB; per PE 4 + 2 + 1 KiB; AQU 2 blocks/cycle with
    # 8192 channels x 8 bits = 8 KiB of sensitivities
    by_hand = (64 * t["glb_per_kib"] + 2 * 4 * t["weight_buffer_per_kib"] + 2 * 2 * t["input_buffer_per_kib"]
               + 2 * 1 * t["accum_buffer_per_kib"] + 128 * (t["mac_fp8"] + t["mac_fgmp_extra"])
               + 8 * (t["block_scale"] + t["accumulator"]) + 2 * t["aqu_block_per_cycle"]
               + 8 * t["aqu_sensitivity_per_kib"]
               # packed PE buffers and GLB: an alignment network per lane (8) and PE (2) and per AQU block (2)
               + (8 + 2 + 2) * t["align_network"])
    assert area_mm2(load_arch("fgmp", SMALL)) == pytest.approx(by_hand, rel=1e-12)


@pytest.mark.parametrize(("layout", "networks"), [
    # dram / glb / pe_buffers: packed PE buffers give 8 lanes + 2 PEs; a packed GLB the AQU's 2 blocks per cycle;
    # GLB != PE buffers a network per 128-bit slot of the 2048-bit GLB read port (16); DRAM != GLB per slot of the
    # 1024-bit DRAM read and write ports (8 + 8)
    (("packed", "packed", "packed"), 8 + 2 + 2),
    (("packed", "packed", "slotted"), 2 + 16),
    (("packed", "slotted", "packed"), 8 + 2 + 16 + 8 + 8),
    (("slotted", "slotted", "slotted"), 0),
])
def test_alignment_networks_by_hand(layout: tuple[str, str, str], networks: int) -> None:
    from fgmpsim.energy.area import alignment_networks

    dram, glb, pe = layout
    sets = [*SMALL, f"storage.layout.dram={dram}", f"storage.layout.glb={glb}", f"storage.layout.pe_buffers={pe}",
            "memory.glb.read_bits_per_cycle=2048", "memory.dram.read_bits_per_cycle=1024",
            "memory.dram.write_bits_per_cycle=1024"]
    arch = load_arch("fgmp", sets)
    assert alignment_networks(arch) == networks
    assert area_breakdown(arch).alignment_networks == pytest.approx(networks * _table()["align_network"], rel=1e-12)
    assert alignment_networks(load_arch("fp8_baseline", [o for o in sets if not o.startswith("aqu.")])) == 0


def test_collector_and_lane_fifo_registers_by_hand() -> None:
    # per lane: (8 weight blocks + 4 FIFO slots) x (16 x 8-bit FP8 slot + 1 flag bit) + (8 - 1) x 32-bit partial sums
    # = 12 x 129 + 224 = 1,772 bits; 8 lanes
    t = _table()
    options = ["pe_array.weight_collector_blocks=8", "pe_array.psum_collector_entries=8", "pe_array.lane_fifo_depth=4"]
    with_registers, without = load_arch("fgmp", [*SMALL, *options]), load_arch("fgmp", SMALL)
    assert area_breakdown(with_registers).lane_registers == pytest.approx(8 * 1772 * t["register_bit"], rel=1e-12)
    assert area_mm2(with_registers) - area_mm2(without) == pytest.approx(8 * 1772 * t["register_bit"], rel=1e-9)
    unbounded = load_arch("fgmp", [*SMALL, "pe_array.lane_fifo_depth=null"])  # an idealization: no area
    assert area_breakdown(unbounded).lane_registers == 0.0


def test_small_fp8_and_fp4_arrays_area_by_hand() -> None:
    t = _table()
    sram = 64 * t["glb_per_kib"] + 2 * (4 * t["weight_buffer_per_kib"] + 2 * t["input_buffer_per_kib"]
                                        + t["accum_buffer_per_kib"])
    small = [o for o in SMALL if not o.startswith("aqu.")]
    assert area_mm2(load_arch("fp8_baseline", small)) == pytest.approx(
        sram + 128 * t["mac_fp8"] + 8 * t["accumulator"], rel=1e-12)      # FP8 blocks carry no block scale
    assert area_mm2(load_arch("nvfp4", small)) == pytest.approx(
        sram + 128 * t["mac_fp4"] + 8 * (t["block_scale"] + t["accumulator"]), rel=1e-12)


def test_fgmp_exceeds_fp8_baseline_by_exactly_the_charged_overhead() -> None:
    fgmp, fp8 = area_breakdown(load_arch("fgmp")), area_breakdown(load_arch("fp8_baseline"))
    for name in set(fgmp.as_dict()) - {f"area_{c}_mm2" for c in FGMP_OVERHEAD_COMPONENTS} - {"area_mm2"}:
        assert fgmp.as_dict()[name] == fp8.as_dict()[name], name
    assert fp8.fgmp_overhead_mm2 == 0.0
    assert all(getattr(fgmp, c) > 0 for c in FGMP_OVERHEAD_COMPONENTS)
    assert fgmp.total_mm2 - fp8.total_mm2 == pytest.approx(fgmp.fgmp_overhead_mm2, rel=1e-12)
    # the documented figure (docs/energy_model.md, "Area"): +4.18%
    assert 100 * (fgmp.total_mm2 / fp8.total_mm2 - 1) == pytest.approx(4.175, abs=5e-4)


def test_with_collectors_fgmp_also_pays_the_precision_flag_of_every_register_entry() -> None:
    # 8 weight blocks + 4 FIFO slots per lane, each with fgmp's 1-bit flag (fp8_baseline stores no flag): the
    # difference is the overhead components plus 256 lanes x 12 entries x 1 bit
    options = ["pe_array.weight_collector_blocks=8", "pe_array.psum_collector_entries=8", "pe_array.lane_fifo_depth=4"]
    fgmp, fp8 = area_breakdown(load_arch("fgmp", options)), area_breakdown(load_arch("fp8_baseline", options))
    flags = 256 * 12 * 1 * _table()["register_bit"]
    assert fgmp.lane_registers - fp8.lane_registers == pytest.approx(flags, rel=1e-9)
    assert fgmp.total_mm2 - fp8.total_mm2 == pytest.approx(fgmp.fgmp_overhead_mm2 + flags, rel=1e-12)


def test_summary_carries_area_and_its_breakdown() -> None:
    trace = fgmpsim.gemm_trace(64, 64, 64, fp4_fraction=0.5, seed=0)
    arch = load_arch("fgmp")
    summary = fgmpsim.simulate(trace, arch).summary()
    expected = area_breakdown(arch).as_dict()
    assert {k: v for k, v in summary.items() if k.startswith("area_")} == expected
    assert summary["area_mm2"] == pytest.approx(sum(v for k, v in expected.items() if k != "area_mm2"), rel=1e-12)


@pytest.mark.parametrize("knob", ["lanes_per_pe", "glb"])
def test_iso_area_grows_the_baseline_to_the_largest_area_within_the_target(knob: str) -> None:
    target = area_mm2(load_arch("fgmp"))
    base = load_arch("fp8_baseline")
    iso = iso_area(base, target, knob)
    grown = load_arch("fp8_baseline", list(iso.overrides))
    assert area_mm2(grown) == pytest.approx(iso.area_mm2, rel=1e-12)
    assert area_mm2(base) < iso.area_mm2 <= target
    if knob == "lanes_per_pe":
        lanes = grown.pe_array.lanes_per_pe
        one_more = load_arch("fp8_baseline", [f"pe_array.lanes_per_pe={lanes + 1}"])
        # ports widened with the lanes: one 144-bit weight block and one 32-bit psum per lane per cycle
        assert grown.memory.weight_buffer.read_bits_per_cycle == -(-2304 * lanes // 16)
        assert grown.memory.accum_buffer.write_bits_per_cycle == -(-512 * lanes // 16)
    else:
        one_more = load_arch("fp8_baseline", [f"memory.glb.size_bytes={grown.memory.glb.size_bytes + 1024}"])
    assert area_mm2(one_more) > target


def test_iso_area_refuses_a_smaller_target_and_an_unknown_knob() -> None:
    base = load_arch("fp8_baseline")
    with pytest.raises(ConfigError, match="below"):
        iso_area(base, area_mm2(base) / 2)
    with pytest.raises(ConfigError) as err:
        iso_area(base, 10.0, "pes")
    assert err.value.field == "knob"


def test_a_table_without_register_and_alignment_entries_prices_an_arch_that_has_neither() -> None:
    # fp8_baseline stores one block size (no alignment networks) and has no collectors or bounded FIFO: the two
    # entries are not required, and a user's table may leave them out
    data = arch_to_dict(load_arch("fp8_baseline"))
    for entry in ("register_bit", "align_network"):
        del data["area"]["entries"][entry]
    arch = arch_from_dict(data, "without.yaml")
    assert area_mm2(arch) == pytest.approx(area_mm2(load_arch("fp8_baseline")), rel=1e-15)
    with pytest.raises(ConfigError, match="register_bit"):
        arch_from_dict(data, "without.yaml", ["pe_array.weight_collector_blocks=2"])


def test_area_table_round_trips_through_arch_to_dict() -> None:
    arch = load_arch("fgmp")
    assert arch_from_dict(arch_to_dict(arch), arch.source) == arch


def _with(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "a.yaml"
    path.write_text(f"extends: {ARCH_CONFIG_DIR / 'fgmp.yaml'}\nname: a\n{text}")
    return path


def test_a_missing_area_entry_is_named(tmp_path: Path) -> None:
    data = arch_to_dict(load_arch("fgmp"))
    del data["area"]["entries"]["mac_fgmp_extra"]
    with pytest.raises(ConfigError) as err:
        arch_from_dict(data)
    assert err.value.field == "area.entries.mac_fgmp_extra"


def test_an_unknown_area_entry_gets_a_suggestion(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="did you mean 'mac_fp8'"):
        load_arch(_with(tmp_path, "area:\n  entries:\n    mac_fp88: {mm2: 1.0e-6, source: x}\n"))


def test_an_enabled_aqu_needs_a_sized_sensitivity_table() -> None:
    with pytest.raises(ConfigError) as err:
        load_arch("fgmp", ["aqu.sensitivity_channels=0"])
    widest = load_arch("fgmp").aqu.sensitivity_channels   # the fix quotes the shipped table's size
    assert (err.value.field, err.value.fix) == ("aqu.sensitivity_channels",
                                                f"set it to the widest channel count ({widest} in fgmp.yaml)")


@pytest.mark.parametrize("name, mac", [("fp8_baseline", "mac_fp8"), ("nvfp4", "mac_fp4")])
def test_the_mac_of_the_datapath_needs_an_area_and_the_other_does_not(name: str, mac: str) -> None:
    """An FP8-only array has FP8 MACs, an FP4-only one FP4 MACs: each needs that entry and not the other's."""
    other = {"mac_fp8": "mac_fp4", "mac_fp4": "mac_fp8"}[mac]
    data = arch_to_dict(load_arch(name))
    del data["area"]["entries"][other]
    arch_from_dict(data)
    del data["area"]["entries"][mac]
    with pytest.raises(ConfigError) as err:
        arch_from_dict(data)
    assert err.value.field == f"area.entries.{mac}"
    assert err.value.what.endswith(f"no area for {mac!r}, a part this arch has")


@pytest.mark.parametrize("name, scale, scaled", [
    ("nvfp4", "storage.fp4_scale_bits=8", True), ("nvfp4", "storage.fp4_scale_bits=0", False),
    ("fp8_baseline", "storage.fp8_scale_bits=8", True), ("fp8_baseline", "storage.fp8_scale_bits=0", False),
])
def test_block_scale_logic_is_paid_per_lane_when_the_datapath_scales_its_blocks(name: str, scale: str,
                                                                                 scaled: bool) -> None:
    """Only the scale of a precision the lanes compute counts (fp8_baseline has 8-bit FP4 scales it never uses):
    256 lanes x the block_scale entry, else nothing."""
    arch = load_arch(name, [scale])
    per_lane = arch.area.as_dict()["block_scale"]
    assert area_breakdown(arch).block_scale == pytest.approx(256 * per_lane if scaled else 0.0)


def test_an_arch_without_area_table_simulates_but_has_no_area() -> None:
    data = arch_to_dict(load_arch("fp8_baseline"))
    del data["area"]
    data["static"] = {"enabled": False}  # static energy is derived from the area model
    arch = arch_from_dict(data)
    assert "area_mm2" not in fgmpsim.simulate(fgmpsim.gemm_trace(16, 32, 16), arch).summary()
    with pytest.raises(ConfigError) as err:
        area_breakdown(arch)
    assert err.value.field == "area"


def _fp8_grown(knob: str, units: int) -> list[str]:
    """fp8_baseline grown by ``units`` lanes per PE (ports widened per lane: 144-bit weight block, 32-bit psum) or
    KiB of GLB, as overrides derived here from base.yaml's numbers, not from fgmpsim.energy.area."""
    if knob == "glb":
        return [f"memory.glb.size_bytes={load_arch('fp8_baseline').memory.glb.size_bytes + 1024 * units}"]
    lanes = 16 + units
    return [f"pe_array.lanes_per_pe={lanes}", f"memory.weight_buffer.read_bits_per_cycle={-(-2304 * lanes // 16)}",
            f"memory.accum_buffer.read_bits_per_cycle={-(-512 * lanes // 16)}",
            f"memory.accum_buffer.write_bits_per_cycle={-(-512 * lanes // 16)}"]


@pytest.mark.parametrize("knob", ["lanes_per_pe", "glb"])
@pytest.mark.parametrize("units", [0, 1, 3, 7])
def test_iso_area_at_exactly_a_grown_designs_area_grows_by_exactly_that_much(knob: str, units: int) -> None:
    target = area_mm2(load_arch("fp8_baseline", _fp8_grown(knob, units)))
    iso = iso_area(load_arch("fp8_baseline"), target, knob)
    assert iso.knob == knob and iso.target_mm2 == target and iso.area_mm2 == target
    assert set(iso.overrides) == (set(_fp8_grown(knob, units)) if units else set())


@pytest.mark.parametrize("knob", ["lanes_per_pe", "glb"])
def test_iso_area_just_below_a_grown_designs_area_takes_one_unit_less(knob: str) -> None:
    # one ulp below 3 units' area: (target - base) / step rounds to 3.0, so the float floor overshoots and the
    # guard must walk it back to 2 units
    target = math.nextafter(area_mm2(load_arch("fp8_baseline", _fp8_grown(knob, 3))), -math.inf)
    iso = iso_area(load_arch("fp8_baseline"), target, knob)
    assert set(iso.overrides) == set(_fp8_grown(knob, 2))
    assert iso.area_mm2 == area_mm2(load_arch("fp8_baseline", _fp8_grown(knob, 2))) < target


def test_iso_area_errors_name_the_field_and_the_fix() -> None:
    base = load_arch("fp8_baseline")
    with pytest.raises(ConfigError) as knob:
        iso_area(base, 10.0, "pes")
    assert str(knob.value) == "unknown iso-area knob 'pes' (knob): use one of lanes_per_pe, glb"
    with pytest.raises(ConfigError) as small:
        iso_area(base, area_mm2(base) / 2)
    assert (small.value.field, small.value.fix) == (
        "target_mm2", "iso-area grows the smaller design: give it the larger design's area")
    assert small.value.what == f"target {area_mm2(base) / 2:.6g} mm^2 is below 'fp8_baseline''s own " \
                               f"{area_mm2(base):.6g} mm^2"
