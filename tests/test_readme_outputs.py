"""The README's quoted outputs of the shipped SmolLM2 traces are what their commands print today.

Each block below is a README code block that shows a command's output (or its head); the command is run again
in-process and every line the README shows must be a line of the fresh output, in the same order. A model change
that moves a number therefore fails here until the README is regenerated with it.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from fgmpsim import load_arch, load_trace, simulate
from fgmpsim.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()


@pytest.fixture(autouse=True)
def _plain_pipe_output(monkeypatch):
    """The CLI prints as into a pipe (PIPE_WIDTH columns, no colour), whatever the test runner's environment says."""
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)


def _block_after(anchor: str) -> list[str]:
    """The lines of the fenced block that opens at most two lines after the README line ``anchor``."""
    at = README.index(anchor)
    fence = next((k for k in (at + 1, at + 2) if README[k] == "```"), None)
    assert fence is not None, f"no code block right after {anchor!r}"
    return README[fence + 1:README.index("```", fence + 1)]


def _command(lines: list[str]) -> tuple[list[str], list[str]]:
    """``(argv after 'fgmpsim', the output lines)`` of a block that starts with ``$ fgmpsim ...`` lines."""
    text, rest = lines[0].removeprefix("$ fgmpsim "), lines[1:]
    while text.endswith("\\"):
        text, rest = text[:-1] + rest[0].strip(), rest[1:]
    return shlex.split(text), rest


def _shown(lines: list[str]) -> list[str]:
    """The lines of a README block that quote output: not an ellipsis, not the README's own remarks."""
    return [line for line in lines if line.strip() not in ("", "...") and not line.startswith(" (the ")]


def _run(argv: list[str], tmp_path, capsys, monkeypatch) -> list[str]:
    monkeypatch.chdir(ROOT)
    argv = [str(tmp_path / arg) if arg.startswith("out/") else arg for arg in argv]
    assert main(argv) == 0
    return [line.rstrip() for line in capsys.readouterr().out.splitlines()]


def _assert_in_order(shown: list[str], printed: list[str]) -> None:
    assert len(shown) >= 10, shown
    at = 0
    for line in shown:
        assert line in printed[at:], f"README line not in the fresh output (after line {at}):\n{line}"
        at = printed.index(line, at) + 1


def test_simulate_block_is_what_simulate_prints(tmp_path, capsys, monkeypatch):
    """The block shows the head of the output of the first command of the README's simulate examples."""
    command = next(line for line in README if line.startswith("fgmpsim simulate --trace smollm2-135m-fgmp70 "))
    argv = shlex.split(command.split("#")[0])[1:]
    block = _block_after("first command prints (head of the output):")
    _assert_in_order(_shown(block), _run(argv, tmp_path, capsys, monkeypatch))


@pytest.mark.parametrize("anchor", [
    "$ fgmpsim compare --trace traces/smollm2-135m-fgmp70 --arch fgmp --baseline fp8_baseline \\",
    "$ fgmpsim compare --trace traces/smollm2-135m-fgmp70 --arch fgmp --baseline fp8_baseline",
    "$ fgmpsim simulate --trace traces/smollm2-135m-fgmp70 --arch fgmp --set pe_array.weight_collector_blocks=8 \\",
])
def test_command_blocks_are_what_their_commands_print(anchor, tmp_path, capsys, monkeypatch):
    start = README.index(anchor)
    argv, block = _command(README[start:README.index("```", start)])
    _assert_in_order(_shown(block), _run(argv, tmp_path, capsys, monkeypatch))


@pytest.mark.parametrize("trace, arch", [("smollm2-135m-fp8", "fp8_baseline"), ("smollm2-135m-fgmp70", "fgmp")])
def test_results_table_rows_are_what_the_shipped_traces_simulate_to(trace, arch):
    row = next(line for line in README if line.startswith(f"| `{trace}` on `{arch}` |"))
    summary = simulate(load_trace(ROOT / "traces" / trace), load_arch(arch)).summary()
    cells = [cell.strip() for cell in row.strip("|").split("|")][1:]
    assert cells == [f"{summary['cycles']:,}", f"{summary['energy_pj'] / 1e9:.2f} mJ", f"{summary['pj_per_mac']:.3f}",
                     f"{summary['weight_bits_per_element']:.3f}"]
