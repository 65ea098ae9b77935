"""Child process of :func:`fgmpsim.validation.zigzag_peer.run_zigzag`: runs in ZigZag's own interpreter, imports only the
standard library and ZigZag. Usage: ``python zigzag_child.py FOLDER OPT``; writes ``FOLDER/zigzag_result.json``
with the latency (cycles), the MAC energy and the energy per memory level (pJ, summed over operands)."""

import importlib.metadata
import inspect
import json
import logging
import sys
from pathlib import Path


def main(folder: Path, opt: str) -> None:
    from zigzag.api import get_hardware_performance_zigzag

    logging.disable(logging.WARNING)
    sys.stderr = open(folder / "zigzag_stderr.txt", "w")  # LOMA's progress bar ignores its switch
    optional = {"loma_show_progress_bar": False, "pickle_filename": str(folder / "out" / "cmes.pickle")}
    accepted = inspect.signature(get_hardware_performance_zigzag).parameters
    _, _, cmes = get_hardware_performance_zigzag(
        str(folder / "workload.yaml"), str(folder / "accelerator.yaml"), str(folder / "mapping.yaml"),
        opt=opt, dump_folder=str(folder / "out"), **{k: v for k, v in optional.items() if k in accepted})
    cme = cmes[0][1][0][0]  # the layer's CostModelEvaluation (cmes[0][0] is the cumulative one)
    levels: dict[str, float] = {}
    for layer_op, energies in cme.mem_energy_breakdown.items():
        mem_op = cme.memory_operand_links.layer_to_mem_op(layer_op)
        for memory_level, pj in zip(cme.accelerator.memory_hierarchy.get_memory_levels(mem_op=mem_op), energies):
            key = f"{memory_level.name}_pj"
            levels[key] = levels.get(key, 0.0) + float(pj)
    result = {"zigzag_version": importlib.metadata.version("zigzag-dse"), "opt": opt,
              "cycles": int(cme.latency_total2), "mac_pj": float(cme.mac_energy), **levels,
              "temporal_mapping": str(cme.temporal_mapping)}
    (folder / "zigzag_result.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
