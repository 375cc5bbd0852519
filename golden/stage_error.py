"""Where the fixed-point error comes from: every stage tap of the fixed model against the float model.

Both models run on the same image with all their taps (``patch_embed``, ``blocks.{i}.ln1``, ``q``,
``k``, ``v``, ``scores``, ``attn_probs``, ``attn_out``, ``proj``, ``res1``, ``ln2``, ``fc1`` (dense
blocks), ``gate_logits``, ``gate_probs``, ``topk_score`` (MoE blocks), ``mlp_out``, ``out``); the
index taps (``topk_idx``, ``expert_load``) carry no error and are left out. Per stage:

* ``cosine``: cosine similarity of the fixed and the float tensor;
* ``max_err``: the largest |fixed - float|;
* ``max_err_rel``: ``max_err`` over the float tensor's range, its largest |value|;
* ``saturated``: the share of the values that did not fit the stage's type: the fixed code at the
  type's max (or, signed, min) code, or the float value outside the type's range (a wrapping type's
  values wrap instead of sticking at the top);
* ``zero``: the share of the values that round to zero: fixed code 0 where the float value is not 0;
* ``casts_out``: the share of the casts inside the stage whose value did not fit the target type
  (saturated or wrapped; :mod:`edgemoe.golden.range_counts`): an intermediate can saturate while the
  stage's output stays inside its type (e.g. Q.K^T cast to the score type before the scale);
* ``routes_differ`` (``topk_score`` rows only): the share of tokens whose top-k experts differ from
  the float gate's: such a token's ``mlp_out`` is another expert's output, a large error on few values;
* ``params_clamped``: parameter values clamped to their type (``saturate_params``) in the tensors
  the stage computes with (LayerNorm gamma / beta at ``ln1`` / ``ln2``, qkv at ``q``, the
  projection at ``proj``, the MLP's at ``fc1`` / ``mlp_out``, the gate at ``gate_logits``, the patch
  embedding, CLS and position embedding at ``patch_embed``).

The errors accumulate: a stage's error holds every error upstream of it (the fixed model runs on its
own outputs), so the first stage whose cosine drops is where a precision breaks.
"""
from __future__ import annotations

import numpy as np

from .apfixed import Fx

INDEX_TAPS = ("topk_idx", "expert_load")   # integer taps: the error of a route is not a value's
# parameter tensor (after backbone.blocks.{i}.) -> the stage that computes with it
_PARAM_STAGES = (("norm1.", "ln1"), ("norm2.", "ln2"), ("attn.qkv.", "q"), ("attn.proj.", "proj"),
                 ("mlp.fc1.", "fc1"), ("mlp.experts.htoh4.", "mlp_out"), ("mlp.fc2.", "mlp_out"),
                 ("mlp.experts.h4toh.", "mlp_out"), ("mlp.gate.", "gate_logits"))
COLUMNS = ("stage", "cosine", "max_err", "max_err_rel", "saturated", "zero")


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0 or nb == 0:
        return float(na == nb)
    return float(np.clip(a @ b / (na * nb), -1.0, 1.0))


def stage_row(stage: str, fixed: Fx, flt) -> dict:
    """The error row of one stage: ``fixed`` (the fixed model's tap) against ``flt`` (float, same shape)."""
    b = np.asarray(flt, np.float64).ravel()
    raw = np.asarray(fixed.raw).ravel()
    t = fixed.t
    a = t.to_float(raw).astype(np.float64)
    if a.shape != b.shape:
        raise ValueError(f"stage {stage}: fixed tap has {a.size} values, float tap {b.size}")
    err = np.abs(a - b)
    max_err = float(err.max()) if err.size else 0.0
    rng = float(np.abs(b).max()) if b.size else 0.0
    lo = t.min_raw * t.lsb if t.signed else -np.inf
    hi = t.max_raw * t.lsb
    out = (raw == t.max_raw) | (b > hi) | (b < lo)
    if t.signed:
        out |= raw == t.min_raw
    n = max(b.size, 1)
    return dict(stage=stage, cosine=_cosine(a, b), max_err=max_err, max_err_rel=max_err / rng if rng > 0 else 0.0,
                saturated=float(np.count_nonzero(out)) / n, zero=float(np.count_nonzero((raw == 0) & (b != 0))) / n,
                type=t.cpp.replace(", ", ","), values=int(b.size))


def param_stage(name: str) -> str:
    """The stage tap that computes with parameter ``name`` (``backbone.blocks.3.norm2.weight`` -> ``blocks.3.ln2``)."""
    parts = name.split(".")
    if len(parts) > 3 and parts[1] == "blocks":
        rest = ".".join(parts[3:]) + "."
        for prefix, stage in _PARAM_STAGES:
            if rest.startswith(prefix):
                return f"blocks.{parts[2]}.{stage}"
        return f"blocks.{parts[2]}.out"
    return "patch_embed"


def range_stages(tap: str, taps) -> list:
    """The :mod:`~edgemoe.golden.range_counts` stages whose casts make tap ``tap`` (``taps``: the names
    of all the taps: an MoE block's fc1 has no tap, its casts count in ``mlp_out``)."""
    if tap == "patch_embed":
        return ["pixels", "patch_embed"]
    p, _, leaf = tap.rpartition(".")
    if leaf in ("q", "k", "v"):
        return [f"{p}.qkv"]
    if leaf == "topk_score":
        return []        # picked from gate_probs, no cast of its own
    if leaf == "mlp_out" and f"{p}.fc1" not in taps:
        return [f"{p}.fc1", tap]
    return [tap]


def stage_errors(fixed_taps: dict, float_taps: dict, param_range=(), range_counts: dict | None = None) -> list:
    """One row (:func:`stage_row`) per value tap of the fixed model, in the order the model ran them.
    ``float_taps``: the float model's taps as numpy arrays without the batch axis (:func:`float_taps`);
    ``param_range``: the fixed model's :attr:`~FixedM3ViT.param_range` (parameters clamped);
    ``range_counts``: its :attr:`~FixedM3ViT.range_counts` of the same run (the ``casts_out`` column)."""
    clamped = {}
    for p in param_range:
        clamped[param_stage(p.name)] = clamped.get(param_stage(p.name), 0) + int(p.count)
    rows = []
    for name, v in fixed_taps.items():
        if name.rsplit(".", 1)[-1] in INDEX_TAPS or not isinstance(v, Fx):
            continue
        if name not in float_taps:
            raise ValueError(f"stage {name}: the float model has no tap of that name")
        row = dict(stage_row(name, v, float_taps[name]), params_clamped=clamped.get(name, 0))
        idx = name[:-len("topk_score")] + "topk_idx"
        if name.endswith(".topk_score") and idx in fixed_taps and idx in float_taps:
            a, b = np.sort(np.asarray(fixed_taps[idx]), -1), np.sort(np.asarray(float_taps[idx]), -1)
            row["routes_differ"] = float(np.mean(np.any(a != b, axis=-1))) if a.shape == b.shape else 1.0
        if range_counts is not None:
            counts = [range_counts[s] for s in range_stages(name, fixed_taps) if s in range_counts]
            n = sum(c["values"] for c in counts)
            row["casts_out"] = sum(c["saturated"] + c["wrapped"] for c in counts) / n if n else 0.0
        rows.append(row)
    return rows


def float_taps(model, image, task, prec=None) -> dict:
    """The float model's taps on one image as numpy arrays (float64; indices as they are) without the batch axis;
    with ``prec``, the LayerNorm outputs as its smoothed parameters compute them (golden/smoothing.py)."""
    import torch
    taps = {}
    with torch.no_grad():
        model.encode(torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None], task, taps=taps)
    out = {k: (v[0].double() if v.is_floating_point() else v[0]).numpy() for k, v in taps.items() if torch.is_tensor(v)}
    if prec is not None and prec.smooth:
        from .smoothing import smooth_taps
        out = smooth_taps(prec.smooth, out)
    return out


def run_stage_errors(model, spec, prec, params, image, task, attn_rows=None, saturate_params: bool = False) -> list:
    """Run the fixed model (``prec``, ``params``: numpy state_dict) and the float ``model`` on ``image`` and
    return :func:`stage_errors`."""
    from .fixed_model import DEFAULT_ATTN_ROWS, FixedM3ViT
    fx = FixedM3ViT(spec, prec, params, attn_rows or DEFAULT_ATTN_ROWS, saturate_params=saturate_params, warn=False)
    taps = {}
    fx.encode(image, spec.task_index(task), taps)
    return stage_errors(taps, float_taps(model, image, task, prec), fx.param_range, fx.range_counts)


def weakest(rows: list) -> dict | None:
    """The row with the lowest cosine (the first of equals), None without rows."""
    return min(rows, key=lambda r: r["cosine"]) if rows else None


def summary_line(rows: list) -> str:
    """One line: the weakest stage and the output's cosine (the last stage), the MoE blocks whose routes
    differ from the float gate's, and the parameter values clamped."""
    if not rows:
        return "per-stage error vs float: no stages"
    w, last = weakest(rows), rows[-1]
    casts = f", {w['casts_out']:.2%} of its casts out of range" if w.get("casts_out") else ""
    line = (f"per-stage error vs float: weakest stage {w['stage']} (cosine {w['cosine']:.6f}, max error "
            f"{w['max_err']:.4g} = {w['max_err_rel']:.2%} of its range, {w['saturated']:.2%} saturated, "
            f"{w['zero']:.2%} rounded to zero{casts}); output {last['stage']} cosine {last['cosine']:.6f}")
    routed = [f"{r['stage'][:-len('.topk_score')]} {r['routes_differ']:.1%}" for r in rows if r.get("routes_differ")]
    if routed:
        line += f"; tokens routed to other experts than the float gate's: {', '.join(routed)}"
    clamped = sum(r.get("params_clamped", 0) for r in rows)
    if clamped:
        line += f"; {clamped} parameter values clamped"
    return line


def format_stage_table(rows: list) -> str:
    """The rows as an aligned text table, then :func:`summary_line`."""
    head = ("stage", "type", "cosine", "max |err|", "err/range", "saturated", "zero", "casts out", "routes differ",
            "params clamped")
    w = weakest(rows)
    lines = [head]
    for r in rows:
        lines.append((r["stage"], r.get("type", ""), f"{r['cosine']:.6f}", f"{r['max_err']:.4g}",
                      f"{r['max_err_rel']:.3%}", f"{r['saturated']:.2%}", f"{r['zero']:.2%}",
                      f"{r['casts_out']:.2%}" if "casts_out" in r else "-",
                      f"{r['routes_differ']:.2%}" if "routes_differ" in r else "", str(r.get("params_clamped", 0) or "")))
    width = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = [("  ".join(c.ljust(width[i]) if i < 2 else c.rjust(width[i]) for i, c in enumerate(line))
            + ("  <- weakest" if j and rows[j - 1] is w else "")).rstrip() for j, line in enumerate(lines)]
    out.insert(1, "  ".join("-" * x for x in width))
    out.append(summary_line(rows))
    return "\n".join(out)


def json_rows(rows: list) -> list:
    """The rows as the JSON key "stages" holds them: {stage, cosine, max_err, max_err_rel, saturated, zero}
    (plus the stage's type, its number of values, the share of its casts out of range and the parameter
    values clamped)."""
    return [{k: r[k] for k in COLUMNS + ("type", "values", "casts_out", "routes_differ", "params_clamped") if k in r}
            for r in rows]


__all__ = ["stage_row", "stage_errors", "range_stages", "param_stage", "float_taps", "run_stage_errors", "weakest",
           "summary_line", "format_stage_table", "json_rows", "COLUMNS", "INDEX_TAPS"]
