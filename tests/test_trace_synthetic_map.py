"""SyntheticMap: exact FP8 counts, determinism, structure, GQA grouping, manifest round trip."""

from __future__ import annotations

import numpy as np
import pytest

from fgmpsim.errors import TraceError
from fgmpsim.trace import SyntheticMap
from fgmpsim.trace.stats import row_col_fractions
from fgmpsim.trace.synthetic_map import _top_blocks


@pytest.mark.parametrize("shape, count", [((300, 37), 0), ((300, 37), 1), ((300, 37), 3333), ((300, 37), 11100),
                                          ((4, 50, 8), 799), ((1, 16), 5)])
def test_fp8_count_is_exact(shape, count):
    bits = SyntheticMap(shape, count, seed=1, stream="s", row_sigma=1.0, col_sigma=2.0).materialize()
    assert bits.dtype == np.bool_ and bits.shape == shape and np.count_nonzero(bits) == count


def test_same_fields_same_bits_and_the_stream_name_changes_them():
    a = SyntheticMap((64, 32), 600, 0, "layers.0.q_proj/weight", 0.5, 1.0)
    np.testing.assert_array_equal(a.materialize(), a.materialize())
    np.testing.assert_array_equal(a.materialize(), SyntheticMap(**vars(a)).materialize())
    assert (a.materialize() != SyntheticMap((64, 32), 600, 0, "layers.1.q_proj/weight", 0.5, 1.0)
            .materialize()).any()


def test_column_effect_clusters_fp8_blocks_in_a_few_channels():
    flat = SyntheticMap((2048, 64), 2048 * 64 // 5, 0, "x").materialize()
    clustered = SyntheticMap((2048, 64), 2048 * 64 // 5, 0, "x", col_sigma=3.0).materialize()
    _, flat_cols = row_col_fractions(flat)
    rows, cols = row_col_fractions(clustered)
    assert flat_cols.std() < 0.02  # binomial noise only: sqrt(0.2 * 0.8 / 2048) = 0.009
    assert cols.std() > 0.2 and cols.max() > 0.9  # outlier channels are FP8 for almost every token
    assert rows.std() < 3 * flat_cols.std() * np.sqrt(2048 / 64)  # no row effect asked for


def test_grouped_heads_share_their_map():
    bits = SyntheticMap((8, 40, 4), 300, 0, "k", col_sigma=1.0, group=4).materialize()
    for head in range(8):
        np.testing.assert_array_equal(bits[head], bits[head // 4 * 4])
    assert (bits[0] != bits[4]).any()


def test_top_blocks_breaks_ties_by_position():
    score = np.array([1.0, 2.0, 2.0, 2.0, 0.0])
    np.testing.assert_array_equal(_top_blocks(score, 2), [False, True, True, False, False])
    np.testing.assert_array_equal(_top_blocks(score, 4), [True, True, True, True, False])


def test_manifest_round_trip_and_validation():
    smap = SyntheticMap((3, 10, 4), 18, 9, "qk", 0.25, 1.5, group=3)
    assert SyntheticMap.from_manifest(smap.to_manifest()) == smap
    spec = smap.to_manifest() | {"shape": [10, -4]}
    with pytest.raises(TraceError) as err:
        SyntheticMap.from_manifest(spec)
    assert err.value.field == "shape"
    with pytest.raises(TraceError) as err:
        SyntheticMap.from_manifest(smap.to_manifest() | {"group": 2})
    assert err.value.field == "group"
    with pytest.raises(TraceError) as err:
        SyntheticMap.from_manifest(smap.to_manifest() | {"row_sigma": -1.0})
    assert err.value.field == "row_sigma"


def test_grouped_map_count_must_be_a_multiple_of_the_group():
    with pytest.raises(TraceError) as err:
        SyntheticMap.from_manifest(SyntheticMap((3, 10, 4), 17, 9, "qk", group=3).to_manifest())
    assert err.value.field == "fp8_blocks"


def test_memoized_map_equals_a_fresh_generation(monkeypatch):
    from fgmpsim.trace import synthetic_map

    smap = SyntheticMap((37, 24), 300, 5, "layers.0.mlp.up_proj/weight", 0.7, 0.4)
    first = smap.materialize()
    first[:] = False  # callers own the array they get: mutating it must not reach the cache
    monkeypatch.setattr(synthetic_map, "_CACHE", synthetic_map.BytesLRU(synthetic_map.CACHE_BYTES))
    fresh = smap.materialize()
    cached = smap.materialize()
    assert fresh.sum() == cached.sum() == 300
    np.testing.assert_array_equal(fresh, cached)


def test_map_cache_evicts_least_recently_used_within_its_byte_budget():
    from fgmpsim.trace.synthetic_map import BytesLRU

    cache = BytesLRU(capacity_bytes=20)
    maps = [SyntheticMap((8, 8), 10, seed, "m") for seed in range(3)]  # 64 bits = 8 packed bytes each
    for smap in maps[:2]:
        cache.put(smap, np.packbits(smap.materialize().reshape(-1)))
    assert cache.get(maps[0]) is not None  # maps[0] is now the most recently used
    cache.put(maps[2], np.packbits(maps[2].materialize().reshape(-1)))  # 24 bytes > 20: evict maps[1]
    assert cache.get(maps[1]) is None and cache.get(maps[0]) is not None and cache.get(maps[2]) is not None
