"""fgmpsim.arch: shipped configs, extends/override merging, round trip, shipped-name lookup."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fgmpsim.arch import ARCH_CONFIG_DIR, Arch, arch_from_dict, arch_to_dict, find_arch, load_arch, shipped_names
from fgmpsim.errors import ConfigError

DESIGNS = ("fgmp", "fp8_baseline", "nvfp4", "fgmp_fp8_half_rate", "fgmp_output_stationary", "zqfp_w4a8",
           "int_w4a8")
SYSTOLIC_DESIGNS = ("systolic_16x16", "systolic_32x8")  # other arrays: tests/test_sim_systolic.py


def _flat(data: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _diff(a: Arch, b: Arch) -> set[str]:
    fa, fb = _flat(arch_to_dict(a)), _flat(arch_to_dict(b))
    assert fa.keys() == fb.keys()
    return {key for key in fa if fa[key] != fb[key]}


@pytest.mark.parametrize("name", DESIGNS)
def test_every_shipped_design_loads_with_the_shared_array(name: str) -> None:
    arch = load_arch(name)
    assert arch.name == name
    assert Path(arch.source) == ARCH_CONFIG_DIR / f"{name}.yaml"
    # 16 PEs x 16 lanes x 16-wide, every design's fastest mode takes 1 cycle per block pair
    assert arch.peak_macs_per_cycle == 16 * 16 * 16
    assert arch.pe_array.vector_width == 16
    assert arch.energy.technology_node_nm == 5
    assert all(entry.source.strip() for _, entry in arch.energy.entries)


def test_shipped_names_lists_every_file() -> None:
    assert set(shipped_names()) == {*DESIGNS, *SYSTOLIC_DESIGNS, "base"}


def test_base_is_a_fragment_and_loading_it_alone_names_the_first_missing_field() -> None:
    with pytest.raises(ConfigError) as err:
        load_arch("base")
    assert err.value.field == "name"
    assert "missing required key" in str(err.value)
    assert "pe_array.datapath_precisions" in str(err.value)


def test_fp8_baseline_differs_from_fgmp_only_in_datapath_aqu_and_metadata() -> None:
    assert _diff(load_arch("fgmp"), load_arch("fp8_baseline")) == {
        "name", "pe_array.datapath_precisions", "aqu.enabled", "aqu.blocks_per_cycle", "aqu.latency_cycles",
        "aqu.sensitivity_bits_per_channel", "aqu.sensitivity_channels", "storage.metadata_bits_per_block"}
    base = load_arch("fp8_baseline")
    assert base.pe_array.datapath_precisions == ("fp8",)
    assert not base.aqu.enabled and base.storage.metadata_bits_per_block == 0


def test_fgmp_has_the_paper_storage_and_equal_rate_modes() -> None:
    fgmp = load_arch("fgmp")
    assert fgmp.pe_array.datapath_precisions == ("fp4", "fp8")
    assert fgmp.pe_array.cycles_per_block_pair.as_table() == ((1, 1), (1, 1))
    assert fgmp.aqu.enabled and fgmp.aqu.blocks_per_cycle >= 1
    s = fgmp.storage
    assert (s.metadata_bits_per_block, s.fp4_scale_bits, s.fp8_scale_bits) == (1, 8, 0)


def test_nvfp4_differs_from_fp8_baseline_only_in_datapath() -> None:
    assert _diff(load_arch("fp8_baseline"), load_arch("nvfp4")) == {"name", "pe_array.datapath_precisions"}


def test_sweep_variants_change_only_their_knob() -> None:
    fgmp = load_arch("fgmp")
    half = load_arch("fgmp_fp8_half_rate")
    assert _diff(fgmp, half) == {"name", "pe_array.cycles_per_block_pair.fp4xfp8",
                                 "pe_array.cycles_per_block_pair.fp8xfp4", "pe_array.cycles_per_block_pair.fp8xfp8"}
    assert half.pe_array.cycles_per_block_pair.as_table() == ((1, 2), (2, 2))
    assert _diff(fgmp, load_arch("fgmp_output_stationary")) == {"name", "pe_array.dataflow"}


def _write(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    return path


def test_extends_chains_deep_merge_child_over_parent(tmp_path: Path) -> None:
    _write(tmp_path / "grand.yaml", {"extends": str(ARCH_CONFIG_DIR / "fgmp.yaml"), "name": "grand",
                                     "memory": {"glb": {"size_bytes": 1 << 20}}})
    _write(tmp_path / "mid" / "parent.yaml", {"extends": "../grand.yaml", "name": "parent",
                                              "pe_array": {"pes": 8, "datapath_precisions": ["fp8", "fp4"]}})
    child = _write(tmp_path / "mid" / "deeper" / "child.yaml",
                   {"extends": "../parent.yaml", "name": "child", "memory": {"glb": {"read_bits_per_cycle": 1024}}})
    arch = load_arch(child, config_path=(tmp_path,))  # '../' leaves child's directory: allowed by config_path
    fgmp = load_arch("fgmp")
    assert arch.name == "child"
    assert arch.pe_array.pes == 8                                  # from parent
    assert arch.pe_array.lanes_per_pe == fgmp.pe_array.lanes_per_pe  # from fgmp <- base, four levels up
    assert arch.pe_array.datapath_precisions == ("fp8", "fp4")     # lists replace, not append
    assert arch.memory.glb.size_bytes == 1 << 20                   # grand's value survives the child's glb edit
    assert arch.memory.glb.read_bits_per_cycle == 1024
    assert arch.memory.glb.write_bits_per_cycle == fgmp.memory.glb.write_bits_per_cycle


def test_extends_cycle_is_reported(tmp_path: Path) -> None:
    _write(tmp_path / "a.yaml", {"extends": "b.yaml", "name": "a"})
    _write(tmp_path / "b.yaml", {"extends": "c.yaml"})
    _write(tmp_path / "c.yaml", {"extends": "a.yaml"})
    with pytest.raises(ConfigError, match=r"a\.yaml -> b\.yaml -> c\.yaml -> a\.yaml") as err:
        load_arch(tmp_path / "a.yaml")
    assert err.value.field == "extends"


def test_extends_of_a_missing_file_names_it(tmp_path: Path) -> None:
    _write(tmp_path / "a.yaml", {"extends": "nope.yaml", "name": "a"})
    with pytest.raises(ConfigError, match="nope.yaml") as err:
        load_arch(tmp_path / "a.yaml")
    assert err.value.field == "extends"


def test_overrides_as_strings_and_as_dict_parse_yaml_scalars() -> None:
    arch = load_arch("fgmp", ["pe_array.lanes_per_pe=8", "clock_hz=1.5e9", "aqu.enabled=false",
                              "pe_array.datapath_precisions=[fp8]", "storage.metadata_bits_per_block=0",
                              "mapping.tile_m=16"])
    assert arch.pe_array.lanes_per_pe == 8 and arch.clock_hz == 1.5e9 and not arch.aqu.enabled
    assert arch.pe_array.datapath_precisions == ("fp8",) and arch.mapping.tile_m == 16
    same = load_arch("fgmp", {"pe_array.lanes_per_pe": "8", "clock_hz": 1.5e9, "aqu.enabled": False,
                              "pe_array.datapath_precisions": "[fp8]", "storage.metadata_bits_per_block": 0,
                              "mapping.tile_m": 16})
    assert same == arch
    assert load_arch("fgmp", ["mapping.tile_m=16", "mapping.tile_m=null"]).mapping.tile_m is None


def test_override_adds_a_field_absent_from_the_file() -> None:
    assert load_arch("fgmp").memory.dram.size_bytes is None
    assert load_arch("fgmp", ["memory.dram.size_bytes=17179869184"]).memory.dram.size_bytes == 16 << 30


@pytest.mark.parametrize("override, field, hint", [
    ("pe_array.lanes_per_pes=8", "pe_array.lanes_per_pes", "lanes_per_pe"),
    ("memory.gbl.size_bytes=1", "memory.gbl.size_bytes", "glb"),
    ("energy.actions.dram_red_bit.pj=1", "energy.actions.dram_red_bit.pj", "dram_read_bit"),
    ("pe_array.pes.count=1", "pe_array.pes.count", "pe_array.pes"),
    ("aqu=1", "aqu", "aqu.enabled"),
    ("lanes_per_pe", "--set", "a.b.c=value"),
])
def test_an_override_of_a_path_that_does_not_exist_is_named(override: str, field: str, hint: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_arch("fgmp", [override])
    assert err.value.field == field
    assert hint in str(err.value)


def test_a_bad_override_value_is_blamed_on_the_override() -> None:
    with pytest.raises(ConfigError) as err:
        load_arch("fgmp", ["pe_array.pes=0"])
    assert str(err.value).startswith("--set pe_array.pes: must be a positive integer, got 0")


def test_arch_to_dict_round_trips_and_is_plain_yaml() -> None:
    for name in (*DESIGNS, *SYSTOLIC_DESIGNS):
        arch = load_arch(name)
        data = arch_to_dict(arch)
        assert "source" not in data
        assert arch_from_dict(yaml.safe_load(yaml.safe_dump(data)), arch.source) == arch
        assert set(data["energy"]["actions"]) == {entry for entry, _ in arch.energy.entries}


def test_find_arch_resolves_bare_names_paths_and_reports_unknown(tmp_path: Path) -> None:
    assert find_arch("fgmp") == ARCH_CONFIG_DIR / "fgmp.yaml"
    assert find_arch("fgmp.yaml") == ARCH_CONFIG_DIR / "fgmp.yaml"
    own = _write(tmp_path / "fgmp.yaml", {"extends": str(ARCH_CONFIG_DIR / "fgmp.yaml"), "name": "mine"})
    assert find_arch(own) == own and load_arch(own).name == "mine"
    with pytest.raises(ConfigError, match="fp8_baseline") as err:
        find_arch("fgmq")
    assert err.value.field == "arch"
    with pytest.raises(ConfigError):
        find_arch(tmp_path / "missing" / "fgmp.yaml")


def test_import_order_energy_first_works(tmp_path: Path) -> None:
    import subprocess
    import sys
    root = Path(__file__).resolve().parent.parent
    code = "import fgmpsim.energy.price, fgmpsim.arch; print(fgmpsim.arch.load_arch('fgmp').name)"
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "fgmp"
