"""Draw docs/figures/microarchitecture.png: the block diagram of the machine fgmpsim models.

Usage (from the repository root)::

    python docs/figures/microarchitecture.py

The numbers in the boxes are the shipped defaults of arch_configs/base.yaml and fgmp.yaml, read from the loaded
arch so the picture cannot drift from the YAML.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

from fgmpsim.arch import load_arch  # noqa: E402

OUT = Path(__file__).with_suffix(".png")


def _box(ax, x, y, w, h, text, color, size=8.5):
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02", facecolor=color, edgecolor="black",
                                linewidth=0.8))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size)


def _arrow(ax, start, end, text="", both=False):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="<|-|>" if both else "-|>", mutation_scale=10,
                                 linewidth=0.9, color="black"))
    if text:
        ax.text((start[0] + end[0]) / 2 + 0.08, (start[1] + end[1]) / 2, text, fontsize=7, va="center")


def draw(path: Path = OUT) -> Path:
    arch = load_arch("fgmp")
    pe, mem, st = arch.pe_array, arch.memory, arch.storage
    lay = st.layout
    fig, ax = plt.subplots(figsize=(10, 6.2))
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 6.4)
    ax.axis("off")
    _box(ax, 0.3, 5.3, 9.4, 0.8, f"DRAM (HBM2, {mem.dram.read_bits_per_cycle} b/cycle): weights, first inputs, "
         f"every op's output  |  layout: {lay.dram}", "#f3e1c6")
    _box(ax, 0.3, 3.9, 9.4, 0.8, f"global buffer (GLB) {mem.glb.size_bytes // 2**20} MiB, double buffered: weight "
         f"and X tiles, partial-sum spills, output tiles  |  layout: {lay.glb}", "#d9e8f5")
    _arrow(ax, (5, 5.3), (5, 4.7), "fills / write-back (alignment where layouts differ)", both=True)
    # one PE, drawn large, plus a stack hinting at the others
    for k in range(3, 0, -1):
        ax.add_patch(FancyBboxPatch((0.3 + 0.08 * k, 0.25 + 0.08 * k), 7.2, 3.0, boxstyle="round,pad=0.02",
                                    facecolor="white", edgecolor="grey", linewidth=0.6))
    ax.add_patch(FancyBboxPatch((0.3, 0.25), 7.2, 3.0, boxstyle="round,pad=0.02", facecolor="#f7f7f7",
                                edgecolor="black", linewidth=0.9))
    ax.text(0.45, 3.05, f"PE (x {pe.pes})", fontsize=9, weight="bold")
    _box(ax, 0.5, 2.15, 2.1, 0.7, f"weight buffer {mem.weight_buffer.size_bytes // 1024} KiB\n{lay.pe_buffers}",
         "#e3f1df")
    _box(ax, 2.8, 2.15, 2.1, 0.7, f"input buffer {mem.input_buffer.size_bytes // 1024} KiB\n{lay.pe_buffers}",
         "#e3f1df")
    _box(ax, 5.1, 0.45, 2.2, 1.4, f"accum buffer {mem.accum_buffer.size_bytes // 1024} KiB\n"
         "FP32 partial sums\n(fixed-width words)", "#e3f1df")
    _box(ax, 0.5, 1.35, 4.4, 0.5, "alignment network (packed -> fixed-width lane ports)", "#fbe3e3", 7.5)
    _box(ax, 0.5, 0.45, 4.4, 0.7, f"{pe.lanes_per_pe} VMAC lanes x {pe.vector_width} wide: FP4/FP8 decode, "
         "mode mux,\nmultipliers, aligner, adder tree, block scale, FP32 accumulate", "#fff5cc", 7.5)
    _box(ax, 7.9, 2.0, 1.8, 1.5, f"AQU ({arch.aqu.blocks_per_cycle} blocks/cycle,\nwhole array): max-abs,\n"
         "NVFP4 + FP8 candidates,\nFisher-weighted error,\ncompare; pack", "#efe0f5", 7.5)
    _arrow(ax, (1.55, 3.9), (1.55, 2.85), "W tile")
    _arrow(ax, (3.85, 3.9), (3.85, 2.85), "X tile")
    _arrow(ax, (1.55, 2.15), (1.55, 1.85))
    _arrow(ax, (3.85, 2.15), (3.85, 1.85))
    _arrow(ax, (2.7, 1.35), (2.7, 1.15))
    _arrow(ax, (4.9, 0.8), (5.1, 0.8))
    _arrow(ax, (6.2, 1.85), (6.2, 3.9), "spills", both=True)
    _arrow(ax, (7.3, 1.6), (7.9, 2.4), "outputs")
    _arrow(ax, (8.8, 3.5), (8.8, 3.9))
    _box(ax, 7.9, 0.25, 1.8, 1.5, "static energy, every\ncomponent, per cycle:\nleakage = area x mW/mm^2"
         "\nclock = logic area x\npJ/cycle/mm^2", "#eeeeee", 7)
    ax.set_title(f"{arch.describe()}", fontsize=8.5)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


if __name__ == "__main__":
    print(draw())
