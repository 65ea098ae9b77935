"""The fuzz suite's short profile (CI): every family, each case in the capped worker; no case may end in an
untyped error, a silently wrong result, a hang or a crash. The long profile is
``python -m fgmpsim.testing.fuzz --examples 20000`` (docs/reliability.md)."""

from __future__ import annotations

import pytest

pytest.importorskip("hypothesis")

from fgmpsim.testing.cases import TYPED, VALID  # noqa: E402
from fgmpsim.testing.fuzz import FAMILIES, run_fuzz  # noqa: E402

EXAMPLES_PER_FAMILY = 60


def test_short_fuzz_profile_ends_every_case_in_a_typed_error_or_a_sane_result():
    tally = run_fuzz(EXAMPLES_PER_FAMILY, seed_value=1)
    failures = [f"{family} {outcome.status}: {outcome.detail} <- {payload}" for family, outcome, payload
                in tally.failures]
    assert not failures, "\n".join(failures)
    for family in FAMILIES:
        counts = tally.counts[family]
        assert sum(counts.values()) == EXAMPLES_PER_FAMILY  # hypothesis generated every case it was asked for
        assert counts[TYPED] + counts[VALID] == EXAMPLES_PER_FAMILY
    assert sum(tally.counts[f][VALID] for f in FAMILIES) > 0  # the sanity checks saw real results


def test_the_classifier_catches_a_silently_wrong_result():
    """A sanity check that cannot fail proves nothing: corrupt one count of a real result and it must object."""
    import dataclasses

    from fgmpsim.arch import load_arch
    from fgmpsim.sim import simulate
    from fgmpsim.testing.cases import fixture_trace, sanity_problems

    trace, arch = fixture_trace(), load_arch("fgmp")
    result = simulate(trace, arch)
    assert sanity_problems(result, trace, arch) == []
    for column, value in (("macs", 1), ("stall_dram_cycles", 10**6), ("energy_pj", float("inf")),
                          ("compute_cycles", -5)):
        rows = (dict(result.rows[0], **{column: value}), *result.rows[1:])
        assert sanity_problems(dataclasses.replace(result, rows=rows), trace, arch), column
