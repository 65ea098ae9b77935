"""Human-readable quantities: each scales to the unit of its magnitude and keeps its unit."""

import math

import pytest

from fgmpsim import units


@pytest.mark.parametrize("pj, text", [(1.0335e13, "10.34 J"), (3.054e10, "30.54 mJ"), (4.9e7, "49.00 uJ"),
                                      (512.0, "512.00 pJ"), (0.0, "0.00 pJ"), (2.5e3, "2.50 nJ")])
def test_energy_scales_from_pj(pj, text):
    assert units.energy(pj) == text


@pytest.mark.parametrize("num_bytes, text", [(98.24 * 2 ** 20, "98.24 MiB"), (3 * 2 ** 30, "3.00 GiB"),
                                             (1023, "1,023.00 B"), (2 ** 10, "1.00 KiB")])
def test_size_uses_binary_prefixes(num_bytes, text):
    assert units.size(num_bytes) == text


def test_duration_count_percent_change():
    assert units.duration(0.01153) == "11.53 ms" and units.duration(12.0) == "12.00 s"
    assert units.count(3.6692e10, "MAC") == "36.69 GMAC" and units.count(512, "MAC") == "512.00 MAC"
    assert units.percent(0.7766) == "77.7%" and units.change(-0.2644) == "-26.4%" and units.change(0.0) == "+0.0%"
    assert units.energy(math.nan) == "-" and units.change(math.nan) == "-"
