"""Trace storage: exact round trips and loud, specific failures on damaged trace directories."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from fgmpsim.errors import TraceError
from fgmpsim.trace import TRACE_FORMAT_VERSION, GemmOp, SyntheticMap, Trace, load_trace, save_trace
from fgmpsim.trace.record import CAUSAL_KINDS, WHOLE_BLOCKS_FORMAT_VERSION
from fgmpsim.trace.io import MANIFEST, MAPS


def _trace() -> Trace:
    """Two ops with dense maps (2-D and 3-D, one shared input map, odd widths for packbits) and a lazy map."""
    rng = np.random.default_rng(7)
    shared_input = rng.random((5, 3)) < 0.4
    ops = (
        GemmOp("layers.0.self_attn.q_proj", 0, "linear", m=5, k=48, n=11, repeat=1,
               weight_map=rng.random((11, 3)) < 0.3, act_map=shared_input, consumer="layers.0.self_attn.attn_qk"),
        GemmOp("layers.0.self_attn.k_proj", 0, "linear", m=5, k=48, n=11, repeat=1,
               weight_map=rng.random((11, 3)) < 0.3, act_map=shared_input, consumer="layers.0.self_attn.attn_qk",
               consumer_operand="weight"),
        GemmOp("layers.0.self_attn.attn_qk", 0, "attn_qk", m=5, k=32, n=9, repeat=3, static_weight=False,
               weight_map=SyntheticMap((3, 9, 2), 20, 4, "qk/weight", 0.5, 1.5),
               act_map=rng.random((3, 5, 2)) < 0.5),
    )
    return Trace("tiny", ops, meta={"model": "tiny", "perplexity": np.float64(12.5), "sizes": (1, 2),
                                    "fp4_fraction_achieved": {"weight": 0.7}})


@pytest.fixture()
def saved(tmp_path):
    path = tmp_path / "tiny"
    save_trace(_trace(), path)
    return path


def _edit_manifest(path, change) -> None:
    manifest = yaml.safe_load((path / MANIFEST).read_text())
    change(manifest)
    (path / MANIFEST).write_text(yaml.safe_dump(manifest, sort_keys=False))


def test_round_trip_is_bit_exact_for_dense_and_lazy_maps(saved):
    original, loaded = _trace(), load_trace(saved)
    assert loaded.name == "tiny" and loaded.block_size == 16
    assert loaded.meta == {"model": "tiny", "perplexity": 12.5, "sizes": [1, 2],
                           "fp4_fraction_achieved": {"weight": 0.7}}
    for a, b in zip(original.ops, loaded.ops):
        assert (a.name, a.layer, a.kind, a.m, a.k, a.n, a.repeat, a.static_weight, a.consumer,
                a.consumer_operand) == (b.name, b.layer, b.kind, b.m, b.k, b.n, b.repeat, b.static_weight,
                                        b.consumer, b.consumer_operand)
        for left, right in ((a.weight_map_array(), b.weight_map_array()), (a.act_map_array(), b.act_map_array())):
            assert right.dtype == np.bool_ and right.shape == left.shape
            np.testing.assert_array_equal(left, right)
    lazy = loaded.ops[2].weight_map
    assert isinstance(lazy, SyntheticMap) and lazy == original.ops[2].weight_map


def test_shared_maps_are_stored_once_and_shared_after_loading(saved):
    manifest = yaml.safe_load((saved / MANIFEST).read_text())
    keys = [op["act_map"]["npz"] for op in manifest["ops"][:2]]
    assert keys[0] == keys[1]
    with np.load(saved / MAPS, allow_pickle=False) as npz:
        assert len(npz.files) == 4  # two weights, one shared input, one 3-D act map
        assert npz[keys[0]].dtype == np.uint8 and npz[keys[0]].shape == (5, 1)  # 3 bits packed in one byte
    loaded = load_trace(saved)
    assert loaded.ops[0].act_map is loaded.ops[1].act_map


def test_manifest_head_is_human_readable_and_first(saved):
    text = (saved / MANIFEST).read_text()
    assert text.splitlines()[0] == f"format_version: {WHOLE_BLOCKS_FORMAT_VERSION}"  # every K a block multiple
    assert text.index("meta:") < text.index("ops:")


def test_trace_save_method_writes_the_same_directory(tmp_path):
    path = _trace().save(tmp_path / "via_method")
    assert load_trace(path).op("layers.0.self_attn.k_proj").consumer_operand == "weight"


@pytest.mark.parametrize("change, op_name, field", [
    (lambda m: m["ops"][1].update(n=12), "layers.0.self_attn.k_proj", "weight_map"),
    (lambda m: m["ops"][0]["weight_map"].update(shape=[12, 3]), "layers.0.self_attn.q_proj", "weight_map.shape"),
    (lambda m: m["ops"][0]["weight_map"].update(shape=[11, 4]), "layers.0.self_attn.q_proj", "weight_map"),
    (lambda m: m["ops"][2]["act_map"].update(npz="map99"), "layers.0.self_attn.attn_qk", "act_map.npz"),
    (lambda m: m["ops"][2]["weight_map"]["lazy"].update(generator="gaussian"), "layers.0.self_attn.attn_qk",
     "weight_map.lazy.generator"),
    (lambda m: m["ops"][2]["weight_map"]["lazy"].pop("seed"), "layers.0.self_attn.attn_qk",
     "weight_map.lazy.seed"),
    (lambda m: m["ops"][2]["weight_map"]["lazy"].update(fp8_blocks=10 ** 6), "layers.0.self_attn.attn_qk",
     "weight_map.lazy.fp8_blocks"),
    (lambda m: m["ops"][0].pop("k"), "layers.0.self_attn.q_proj", "k"),
    (lambda m: m["ops"][0].update(m="five"), "layers.0.self_attn.q_proj", "m"),
    (lambda m: m["ops"][1].update(consumer="nowhere"), "layers.0.self_attn.k_proj", "consumer"),
])
def test_damaged_op_names_the_op_and_field(saved, change, op_name, field):
    _edit_manifest(saved, change)
    with pytest.raises(TraceError) as err:
        load_trace(saved)
    assert op_name in str(err.value)
    assert err.value.field == field


@pytest.mark.parametrize("change, field", [
    (lambda m: m.update(format_version=TRACE_FORMAT_VERSION + 1), "format_version"),
    (lambda m: m.pop("format_version"), "format_version"),
    (lambda m: m.pop("block_size"), "block_size"),
    (lambda m: m.update(ops=[]), "ops"),
    (lambda m: m.pop("maps_sha256"), "maps_sha256"),
])
def test_damaged_head_names_the_field(saved, change, field):
    _edit_manifest(saved, change)
    with pytest.raises(TraceError) as err:
        load_trace(saved)
    assert err.value.field == field


def test_truncated_maps_npz_is_a_trace_error_naming_the_file(saved):
    data = (saved / MAPS).read_bytes()
    (saved / MAPS).write_bytes(data[: len(data) // 2])
    with pytest.raises(TraceError) as err:
        load_trace(saved)
    assert err.value.field == MAPS and "maps.npz" in str(err.value) and "re-export" in err.value.fix


def test_corrupt_member_of_maps_npz_is_a_trace_error(saved):
    with zipfile.ZipFile(saved / MAPS) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    name = sorted(members)[0]
    with zipfile.ZipFile(saved / MAPS, "w", compression=zipfile.ZIP_STORED) as archive:
        for member, payload in members.items():
            archive.writestr(member, payload[:20] if member == name else payload)
    with pytest.raises(TraceError) as err:
        load_trace(saved)
    assert err.value.field == MAPS and "layers.0" in str(err.value)


def test_maps_npz_of_another_trace_is_refused(saved, tmp_path):
    other = tmp_path / "other"
    save_trace(Trace("other", _trace().ops[::-1]), other)
    os.replace(other / MAPS, saved / MAPS)
    with pytest.raises(TraceError, match="does not match its manifest") as err:
        load_trace(saved)
    assert err.value.field == MAPS


def test_pickled_arrays_are_refused_even_with_a_matching_checksum(saved):
    import hashlib
    import io

    buffer = io.BytesIO()
    np.savez(buffer, map0=np.array([{"evil": 1}], dtype=object))
    (saved / MAPS).write_bytes(buffer.getvalue())
    _edit_manifest(saved, lambda m: m.update(maps_sha256=hashlib.sha256(buffer.getvalue()).hexdigest()))
    with pytest.raises(TraceError, match="has object .* expected uint8") as err:  # refused from the header alone
        load_trace(saved)
    assert err.value.field == "weight_map.shape"


def test_missing_files_and_bad_yaml(saved, tmp_path):
    (saved / MAPS).unlink()
    with pytest.raises(TraceError, match="maps.npz is missing") as err:
        load_trace(saved)
    assert "layers.0.self_attn.q_proj" in str(err.value)
    (saved / MANIFEST).write_text("format_version: 1\nops: [unclosed\n")
    with pytest.raises(TraceError, match="not valid YAML"):
        load_trace(saved)
    (saved / MANIFEST).unlink()
    with pytest.raises(TraceError) as err:
        load_trace(saved)
    assert err.value.field == MANIFEST
    with pytest.raises(TraceError, match="does not exist"):
        load_trace(tmp_path / "nowhere")


def test_manifest_yaml_tags_are_refused(saved):
    text = (saved / MANIFEST).read_text().replace("name: tiny", "name: !!python/object/apply:os.system [echo]", 1)
    (saved / MANIFEST).write_text(text)
    with pytest.raises(TraceError, match="not valid YAML"):
        load_trace(saved)


def test_linked_file_outside_the_trace_directory_is_refused(saved, tmp_path):
    outside = tmp_path / "elsewhere.npz"
    os.replace(saved / MAPS, outside)
    os.symlink(outside, saved / MAPS)
    with pytest.raises(TraceError, match="outside the trace directory"):
        load_trace(saved)


def test_save_replaces_a_link_instead_of_writing_through_it(tmp_path):
    target = tmp_path / "victim.txt"
    target.write_text("keep")
    path = tmp_path / "t"
    path.mkdir()
    os.symlink(target, path / MANIFEST)
    save_trace(_trace(), path)
    assert target.read_text() == "keep" and not (path / MANIFEST).is_symlink()
    assert sorted(p.name for p in path.iterdir()) == [MANIFEST, MAPS]


def test_save_refuses_a_file_path_and_unstorable_meta(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(TraceError, match="not a directory"):
        save_trace(_trace(), tmp_path / "file")
    bad = Trace("bad", _trace().ops, meta={"model": {"fn": print}})
    with pytest.raises(TraceError) as err:
        save_trace(bad, tmp_path / "bad")
    assert err.value.field == "meta.model.fn"


def test_save_checks_the_trace_first(tmp_path):
    op = GemmOp("broken", 0, "linear", m=2, k=32, n=3, repeat=1, weight_map=np.zeros((3, 3), bool),
                act_map=np.zeros((2, 2), bool))
    with pytest.raises(TraceError, match="'broken'"):
        save_trace(Trace("t", (op,)), tmp_path / "t")
    assert not (tmp_path / "t").exists()


TRACES = Path(__file__).resolve().parents[1] / "traces"
SHIPPED = sorted(p.parent for p in TRACES.rglob("manifest.yaml"))


@pytest.mark.parametrize("directory", SHIPPED, ids=lambda p: str(p.relative_to(TRACES)))
def test_shipped_real_traces_record_causal_attention(directory):
    """SmolLM2 is a causal LM: every shipped trace of it marks its attention ops causal, so simulating it skips the
    masked half as the model does (a trace of format 1 or 2 would load dense and count the whole M x N product)."""
    trace = load_trace(directory)
    attention = [op for op in trace.ops if op.kind in CAUSAL_KINDS]
    assert attention and all(op.causal for op in attention)
    assert all(not op.causal for op in trace.ops if op.kind not in CAUSAL_KINDS)
