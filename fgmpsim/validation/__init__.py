"""Validation against outside references: energy against ZigZag and published silicon, the FGMP paper's headline
side by side, the SCALE-Sim cycle table, and :func:`validate`, which regenerates ``docs/validation.md``."""

from fgmpsim.validation.report import ValidationReport, validate

__all__ = ["ValidationReport", "validate"]
