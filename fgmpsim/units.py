"""Numbers for people: scale a quantity to the unit that suits its magnitude (pJ -> J, bytes -> GiB, s -> ms).

Used by every table the CLI and the notebooks print, so a 10 J run reads "10.34 J", not "10,335.9208 mJ".
Each function takes the quantity in its base unit (pJ, bytes, seconds, plain count) and returns a short string
with the unit; ``nan`` prints as "-".
"""

from __future__ import annotations

import math

_ENERGY_UNITS = ((1e12, "J"), (1e9, "mJ"), (1e6, "uJ"), (1e3, "nJ"), (1.0, "pJ"))
_TIME_UNITS = ((1.0, "s"), (1e-3, "ms"), (1e-6, "us"), (1e-9, "ns"))
_BYTE_UNITS = ((2 ** 40, "TiB"), (2 ** 30, "GiB"), (2 ** 20, "MiB"), (2 ** 10, "KiB"), (1, "B"))
_COUNT_UNITS = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""))


def _scaled(value: float, units: tuple[tuple[float, str], ...], digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    for factor, unit in units:
        if abs(value) >= factor:
            break
    text = f"{value / factor:,.{digits}f}"
    return f"{text} {unit}" if unit else text


def energy(pj: float, digits: int = 2) -> str:
    """Energy given in pJ, e.g. ``energy(1.034e13) == "10.34 J"``."""
    return _scaled(pj, _ENERGY_UNITS, digits)


def duration(seconds: float, digits: int = 2) -> str:
    """Time given in seconds, e.g. ``duration(0.0117) == "11.70 ms"``."""
    return _scaled(seconds, _TIME_UNITS, digits)


def size(num_bytes: float, digits: int = 2) -> str:
    """Size given in bytes, binary prefixes, e.g. ``size(3 * 2**30) == "3.00 GiB"``."""
    return _scaled(num_bytes, _BYTE_UNITS, digits)


def count(value: float, unit: str = "", digits: int = 2) -> str:
    """A count with a decimal prefix and an optional unit, e.g. ``count(3.67e10, "MAC") == "36.69 GMAC"``."""
    text = _scaled(value, _COUNT_UNITS, digits)
    if not unit or text == "-":
        return text
    number, _, prefix = text.partition(" ")
    return f"{number} {prefix}{unit}"


def percent(fraction: float, digits: int = 1) -> str:
    """A fraction as a percentage, e.g. ``percent(0.825) == "82.5%"``."""
    return "-" if math.isnan(fraction) else f"{100 * fraction:.{digits}f}%"


def change(relative: float, digits: int = 1) -> str:
    """A relative change with its sign, e.g. ``change(-0.264) == "-26.4%"``; 0 prints as "+0.0%"."""
    return "-" if math.isnan(relative) else f"{100 * relative:+.{digits}f}%"
