"""``fgmpsim quantize`` / ``fgmpsim export``: bad input is one line and exit status 2, before any model loads."""

from __future__ import annotations

import pytest

from fgmpsim.cli import build_parser, main
from fgmpsim.cli.quantize import command_line


@pytest.mark.parametrize(("argv", "field"), [
    (["quantize", "--policies", "fgmp", "nope"], "(policy)"),
    (["quantize", "--fp4-fraction", "0.5", "1.5"], "(fp4_fraction)"),
    (["quantize", "--policies", "zqfp_w4a8:m3"], "(policy)"),
    (["quantize", "--policies", "zqfp_w4a8:m2+lorc8+gptq+lorc4"], "(policy)"),
    (["quantize", "--model", "/no/such/model"], "(model)"),
    (["quantize", "--text", "/no/such/text.txt"], "(text)"),
    (["quantize", "--calib-sequences", "0"], "(calib_sequences)"),
    (["quantize", "--seq-len", "1"], "(seq_len)"),
    (["export", "--out", "unused", "--policy", "nope"], "(policy)"),
    (["export", "--out", "unused", "--tokens", "100"], "(tokens)"),
    (["export", "--out", "unused", "--fp4-fraction", "-0.1"], "(fp4_fraction)"),
])
def test_bad_input_is_one_line_and_exit_status_2(argv, field, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and field in err


def test_recorded_command_spells_out_every_setting():
    args = build_parser().parse_args(["quantize", "--policies", "fgmp", "mse", "--fp4-fraction", "0.5", "0.9",
                                      "--out", "somewhere"])
    assert command_line(args) == ("fgmpsim quantize --model smollm2-135m --policies fgmp mse --fp4-fraction 0.5 0.9 "
                                  "--calib-sequences 32 --seq-len 256 --eval-tokens 4096 --seed 0")


def test_missing_model_extra_is_a_model_error_naming_the_install(tmp_path, monkeypatch):
    import sys

    from fgmpsim.errors import ModelError
    from fgmpsim.quant.model import load_model

    (tmp_path / "config.json").write_text("{}")
    monkeypatch.setitem(sys.modules, "transformers", None)  # import of transformers now raises ImportError
    with pytest.raises(ModelError, match=r"needs the 'model' extra .*pip install torch==2\.13\.0") as err:
        load_model.__wrapped__(str(tmp_path))
    assert err.value.field == "model"
