"""fgmpsim.arch validation: every broken YAML yields one ConfigError line naming the field, never pydantic text."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fgmpsim.arch import ARCH_CONFIG_DIR, load_arch
from fgmpsim.errors import ConfigError

FGMP = str(ARCH_CONFIG_DIR / "fgmp.yaml")


def _arch_file(tmp_path: Path, body: dict, extends: str | None = FGMP) -> Path:
    doc = {"extends": extends, "name": "broken", **body} if extends else body
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


BROKEN = [
    # (YAML body over fgmp.yaml, field the error must name, words the message must contain)
    ({"pe_array": {"lanes_per_pe": 0}}, "pe_array.lanes_per_pe", "must be a positive integer, got 0"),
    ({"pe_array": {"lanes_per_pes": 16}}, "pe_array.lanes_per_pes", "did you mean 'lanes_per_pe'"),
    ({"pe_array": {"pes": "16"}}, "pe_array.pes", "must be an integer, got '16'"),
    ({"pe_array": {"pes": 16.5}}, "pe_array.pes", "must be an integer"),
    ({"pe_array": {"pes": True}}, "pe_array.pes", "must be an integer"),
    ({"pe_array": {"vector_width": 12}}, "pe_array.vector_width", "power of two, got 12"),
    ({"pe_array": {"dataflow": "row_stationary"}}, "pe_array.dataflow", "'output_stationary' or 'systolic_ws'"),
    ({"pe_array": {"datapath_precisions": []}}, "pe_array.datapath_precisions", "must not be empty"),
    ({"pe_array": {"datapath_precisions": ["fp4", "fp16"]}}, "pe_array.datapath_precisions.1", "'fp4', 'fp8' or 'int8'"),
    ({"pe_array": {"datapath_precisions": ["fp8", "fp8"]}}, "pe_array.datapath_precisions", "twice"),
    ({"pe_array": {"cycles_per_block_pair": {"fp8xfp8": 0}}}, "pe_array.cycles_per_block_pair.fp8xfp8",
     "positive integer, got 0"),
    ({"pe_array": {"cycles_per_block_pair": {"fp8xfp16": 1}}}, "pe_array.cycles_per_block_pair.fp8xfp16",
     "unknown key"),
    ({"clock_hz": 0}, "clock_hz", ">= 1000"),
    ({"clock_hz": "fast"}, "clock_hz", "must be a number"),
    ({"aqu": {"blocks_per_cycle": 0}}, "aqu.blocks_per_cycle", "at least 1 block per cycle"),
    ({"aqu": {"enabled": "on"}}, "aqu.enabled", "true or false"),
    ({"aqu": {"sensitivity_bits_per_channel": 0}}, "aqu.sensitivity_bits_per_channel", "sensitivities"),
    ({"pe_array": {"datapath_precisions": ["fp8"]}}, "aqu.enabled", "chooses FP4 or FP8"),
    ({"storage": {"metadata_bits_per_block": 0}}, "storage.metadata_bits_per_block", "precision flag"),
    ({"storage": {"fp4_scale_bits": -8}}, "storage.fp4_scale_bits", ">= 0"),
    ({"memory": {"glb": {"size_bytes": None}}}, "memory.glb.size_bytes", "must be an integer"),
    ({"memory": {"weight_buffer": {"read_bits_per_cycle": 0}}}, "memory.weight_buffer.read_bits_per_cycle",
     "positive integer"),
    ({"memory": {"l2": {"size_bytes": 1}}}, "memory.l2", "unknown key"),
    ({"energy": {"actions": {"dram_read_bit": {"pj": -1.0}}}}, "energy.actions.dram_read_bit.pj", ">= 0"),
    ({"energy": {"actions": {"dram_read_bit": {"pj": float("nan")}}}}, "energy.actions.dram_read_bit.pj", "finite"),
    ({"energy": {"actions": {"dram_read_bit": {"source": ""}}}}, "energy.actions.dram_read_bit.source",
     "non-empty"),
    ({"energy": {"actions": {"dram_red_bit": {"pj": 1.0, "source": "x"}}}}, "energy.actions.dram_red_bit",
     "did you mean 'dram_read_bit'"),
    ({"energy": {"technology_node_nm": 0}}, "energy.technology_node_nm", "positive"),
    ({"mapping": {"tile_k_blocks": 64}}, "mapping.tile_k_blocks", "memory.weight_buffer"),
    ({"mapping": {"tile_m": 16, "tile_k_blocks": 32}}, "mapping.tile_m", "memory.input_buffer"),
    ({"mapping": {"tile_m": 49}}, "mapping.tile_m", "memory.accum_buffer"),
    ({"mapping": {"tile_x": 1}}, "mapping.tile_x", "unknown key"),
    ({"name": ""}, "name", "non-empty"),
    # fixed tiles wider than the array would compute more outputs in parallel than it has lanes (or PEs)
    ({"mapping": {"tile_n": 257}}, "mapping.tile_n", "exceed the 256 lanes"),
    ({"pe_array": {"dataflow": "output_stationary"}, "mapping": {"tile_n": 17}}, "mapping.tile_n",
     "exceed the 16 lanes (lanes_per_pe)"),
    ({"pe_array": {"dataflow": "output_stationary"}, "mapping": {"tile_m": 17}}, "mapping.tile_m",
     "exceed the 16 PEs"),
]


@pytest.mark.parametrize("body, field, words", BROKEN, ids=[case[1] + ":" + case[2][:20] for case in BROKEN])
def test_broken_yaml_error_names_its_field(tmp_path: Path, body: dict, field: str, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_arch(_arch_file(tmp_path, body))
    text = str(err.value)
    assert err.value.field == field, text
    assert words in text, text
    assert "\n" not in text
    assert text.startswith("broken.yaml: ")
    for leak in ("Input should", "pydantic", "validation error", "Value error"):
        assert leak not in text


def _full_fgmp() -> dict:
    from fgmpsim.arch.documents import read_with_extends
    return read_with_extends(Path(FGMP))


def test_missing_energy_entry_for_a_counted_action_is_named(tmp_path: Path) -> None:
    doc = _full_fgmp()
    del doc["energy"]["actions"]["mac_fp4xfp8"]
    with pytest.raises(ConfigError) as err:
        load_arch(_arch_file(tmp_path, doc, extends=None))
    assert err.value.field == "energy.actions.mac_fp4xfp8"


def test_entries_for_actions_an_arch_cannot_count_may_be_omitted(tmp_path: Path) -> None:
    doc = _full_fgmp()
    doc["pe_array"]["datapath_precisions"] = ["fp8"]
    doc["aqu"] = {"enabled": False}
    doc["storage"]["metadata_bits_per_block"] = 0
    for entry in ("mac_fp4xfp4", "mac_fp4xfp8", "mac_fp8xfp4", "aqu_block", "aqu_sensitivity_read_bit"):
        del doc["energy"]["actions"][entry]
    arch = load_arch(_arch_file(tmp_path, doc, extends=None))
    assert {name for name, _ in arch.energy.entries} == set(arch.energy.as_dict())
    assert "mac_fp8xfp8" in arch.energy.as_dict() and "mac_fp4xfp4" not in arch.energy.as_dict()


def test_fixed_tiles_fit_exactly_at_the_worst_case_block_bound(tmp_path: Path) -> None:
    # fgmp: worst block = FP8 (16 x 8 = 128 bits, no scale) + 1 metadata bit = 129 bits; the double-buffered
    # 32 KB weight buffer offers 16 KB = 131072 bits per tile -> floor(131072 / (16 lanes x 129)) = 63 blocks.
    assert load_arch("fgmp", ["mapping.tile_k_blocks=63"]).mapping.tile_k_blocks == 63
    with pytest.raises(ConfigError, match="needs 16512 bytes"):  # 16 x 64 x 129 / 8
        load_arch("fgmp", ["mapping.tile_k_blocks=64"])
    # without the metadata bit (FP8 baseline) 64 blocks x 16 lanes x 128 bits fill the 16 KB exactly
    assert load_arch("fp8_baseline", ["mapping.tile_k_blocks=64"]).mapping.tile_k_blocks == 64
    # input buffer: 8 KB usable = 65536 bits; 15 x 32 x 129 = 61920 fits, 16 x 32 x 129 = 66048 does not
    assert load_arch("fgmp", ["mapping.tile_m=15", "mapping.tile_k_blocks=32"]).mapping.tile_m == 15
    # accumulation buffer (double buffered): 6144 B / 2 = 24576 bits = 16 lanes x 48 rows x 32 bits
    assert load_arch("fgmp", ["mapping.tile_m=48"]).mapping.tile_m == 48


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\npe_array: {pes: 16\nclock_hz: 1\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_arch(path)


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_arch(path)


def test_unsafe_yaml_tags_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.yaml"
    path.write_text("name: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_arch(path)


def test_exponent_floats_without_dot_or_sign_are_numbers(tmp_path: Path) -> None:
    path = tmp_path / "e.yaml"
    path.write_text(f"extends: {FGMP}\nname: e\nclock_hz: 2e9\nenergy:\n  actions:\n"
                    "    dram_read_bit: {pj: 4e0, source: x}\n")
    arch = load_arch(path)
    assert arch.clock_hz == 2e9 and arch.energy.pj("dram_read_bit") == 4.0
