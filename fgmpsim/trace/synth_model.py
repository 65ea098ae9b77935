"""The statistical model behind synthetic traces: map roles and their fitted parameters.

Every precision map of a Llama-style trace plays one *role* (e.g. the weight of ``down_proj``, the shared input of
q/k/v, the K operand of ``attn_qk``) in one *class* (``weight``: static weights the policy decides offline;
``act``: maps the AQU decides online, including the dynamic attention operands). Per role the model holds:

* ``fp8_scale``: the role's FP8 fraction relative to its class's FP8 fraction (synthesis rescales all roles of a
  class by one factor so the class hits its target), or ``fixed_fp8_fraction`` for maps the policy does not decide
  (e.g. softmax output P kept in FP8, an unquantized lm_head);
* the depth profile: ``first_layer`` and ``last_layer``, the log FP8 fraction of the first and the last decoder
  layer (often outliers), and ``layer_profile``, the log FP8 fraction of the layers between them at evenly spaced
  relative depths (linear in between), all relative to the role mean; ``layer_sigma`` is the scatter of the
  inner layers around the profile;
* ``row_sigma``/``col_sigma``: row/column effect sizes inside one map, in logit units
  (see :mod:`fgmpsim.trace.synthetic_map`).

The shipped numbers (``synth_params.yaml``, fitted by :mod:`fgmpsim.trace.fit`) are read with the one safe YAML
reader (:mod:`fgmpsim.io.safe_yaml`).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from fgmpsim.errors import TraceError, closest_hint, excerpt
from fgmpsim.io.safe_yaml import read_yaml_file
from fgmpsim.trace.record import GemmOp

SHIPPED_PARAMS = Path(__file__).with_name("synth_params.yaml")

LINEAR_INPUT_ROLE = {"q_proj": "attn_in", "k_proj": "attn_in", "v_proj": "attn_in", "o_proj": "o_in",
                     "gate_proj": "mlp_in", "up_proj": "mlp_in", "down_proj": "down_in"}
"""Linear op (last name component) -> the role of its input activation map (q/k/v and gate/up share inputs)."""

ROLE_CLASS: dict[str, str] = {
    **{proj: "weight" for proj in LINEAR_INPUT_ROLE}, "lm_head": "weight",
    **{role: "act" for role in ("attn_in", "o_in", "mlp_in", "down_in", "lm_head_in")},
    "qk_q": "act", "qk_k": "act", "pv_p": "act", "pv_v": "act",
}
"""Every role and its class: ``weight`` (static weights) or ``act`` (AQU-decided activations and attention
operands: ``qk_q`` = Q, ``qk_k`` = K, ``pv_p`` = softmax output P, ``pv_v`` = V^T)."""

CLASSES = ("weight", "act")


def op_roles(op: GemmOp) -> tuple[str | None, str | None]:
    """The roles of ``op``'s weight-side and activation maps, or ``None`` for an op this model does not know
    (a linear whose name does not end in a Llama projection name)."""
    if op.kind == "attn_qk":
        return "qk_k", "qk_q"
    if op.kind == "attn_pv":
        return "pv_v", "pv_p"
    if op.kind == "lm_head":
        return "lm_head", "lm_head_in"
    proj = op.name.rsplit(".", 1)[-1]
    if op.kind == "linear" and proj in LINEAR_INPUT_ROLE:
        return proj, LINEAR_INPUT_ROLE[proj]
    return None, None


@dataclass(frozen=True)
class RoleParams:
    """Fitted numbers of one role (see the module docstring for their meaning and units)."""

    fp8_scale: float = 1.0
    fixed_fp8_fraction: float | None = None
    first_layer: float = 0.0
    last_layer: float = 0.0
    layer_profile: tuple[float, ...] = ()
    layer_sigma: float = 0.0
    row_sigma: float = 0.0
    col_sigma: float = 0.0

    def log_layer_profile(self, layers: int) -> np.ndarray:
        """Log relative FP8 fraction of each of ``layers`` decoder layers, scatter excluded."""
        inner = max(layers - 2, 0)
        knots = self.layer_profile
        if inner and len(knots) >= 2:
            depth = np.arange(inner) / max(inner - 1, 1) * (len(knots) - 1)
            profile = np.interp(depth, np.arange(len(knots)), knots)
        else:
            profile = np.full(inner, knots[0] if knots else 0.0)
        edges = [self.first_layer, self.last_layer][:layers]
        return np.concatenate([edges[:1], profile, edges[1:]])


@dataclass(frozen=True)
class SynthParams:
    """Parameters of every role plus where they came from (``source``: the fitted trace and its settings)."""

    roles: dict[str, RoleParams]
    source: dict[str, Any] = field(default_factory=dict)

    def role(self, name: str) -> RoleParams:
        """The parameters of role ``name`` (defaults: fraction equal to its class's, no structure)."""
        return self.roles.get(name, RoleParams())

    def to_yaml(self) -> str:
        """YAML text that :func:`load_synth_params` reads back."""
        roles = {}
        for name, params in self.roles.items():
            entry = asdict(params)
            entry["layer_profile"] = list(params.layer_profile)
            roles[name] = entry
        return yaml.safe_dump({"source": self.source, "roles": roles}, sort_keys=False, default_flow_style=None,
                              width=120)


def load_synth_params(path: str | os.PathLike[str] | None = None) -> SynthParams:
    """Read fitted parameters (default: the shipped ``synth_params.yaml``); :class:`TraceError` names the field."""
    file = Path(path) if path is not None else SHIPPED_PARAMS
    if not file.exists():
        raise TraceError(f"{file} does not exist", "params", "give a file written by fgmpsim trace fit")
    data = read_yaml_file(file, "params", TraceError)
    if not isinstance(data, dict) or not isinstance(data.get("roles"), dict):
        raise TraceError(f"{file} has no 'roles' mapping", "roles", "give a file written by fgmpsim trace fit")
    roles = {}
    for name, entry in data["roles"].items():
        if name not in ROLE_CLASS:
            raise TraceError(f"{file}: unknown role {excerpt(name)}", f"roles.{str(name)[:60]}",
                             closest_hint(str(name), tuple(ROLE_CLASS)))
        roles[name] = _role_params(entry, f"roles.{name}", file)
    source = data.get("source") or {}
    if not isinstance(source, dict):
        raise TraceError(f"{file}: source must be a mapping", "source", "fix the file")
    return SynthParams(roles=roles, source=source)


def _role_params(entry: Any, where: str, file: Path) -> RoleParams:
    if not isinstance(entry, dict):
        raise TraceError(f"{file}: {where} must be a mapping", where, "fix the file")
    known = tuple(RoleParams.__dataclass_fields__)
    for key in entry:
        if key not in known:
            raise TraceError(f"{file}: {where} has an unknown key {excerpt(str(key))}", f"{where}.{str(key)[:60]}",
                             closest_hint(str(key), known))

    def number(key: str, low: float, high: float = math.inf) -> float:
        value = entry.get(key, getattr(RoleParams, key))
        if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
                or not low <= value <= high):
            raise TraceError(f"{file}: {where}.{key} must be a finite number in [{low}, {high}], got "
                             f"{excerpt(value)}",
                             f"{where}.{key}", "fix the file or refit it with fgmpsim trace fit")
        return float(value)

    fixed = entry.get("fixed_fp8_fraction")
    profile = entry.get("layer_profile", [])
    if not isinstance(profile, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                and math.isfinite(v) for v in profile):
        raise TraceError(f"{file}: {where}.layer_profile must be a list of numbers", f"{where}.layer_profile",
                         "fix the file or refit it with fgmpsim trace fit")
    return RoleParams(fp8_scale=number("fp8_scale", 0.0),
                      fixed_fp8_fraction=None if fixed is None else number("fixed_fp8_fraction", 0.0, 1.0),
                      first_layer=number("first_layer", -20.0, 20.0), last_layer=number("last_layer", -20.0, 20.0),
                      layer_profile=tuple(float(v) for v in profile), layer_sigma=number("layer_sigma", 0.0),
                      row_sigma=number("row_sigma", 0.0), col_sigma=number("col_sigma", 0.0))
