"""The ``per-channel`` option of w8a8: one power-of-two weight scale per output channel of a linear layer.

A per-tensor 8-bit weight type takes its range from the tensor's largest value; rows (output channels)
whose values are much smaller (V beside peaked Q / K rows, a quiet expert beside a loud one) keep only a
few significant bits.  With this option, row o of a weight tensor of nominal type ``ap_fixed<W, I>`` is
stored as ``ap_fixed<W, I - s_o>``: the same W-bit codes at a finer step, s_o = 0 .. CHANNEL_SHIFT_MAX,
the smallest power-of-two range that holds the row (never coarser than the tensor's type).

In the kernel the codes and the MACs are unchanged: output lane o's accumulator simply has s_o more
fraction bits.  The engine reads s_o beside the lane's bias (one small array per bias array: ``g_wsh``
next to ``g_bias``, ``g_qkv_wsh`` next to ``g_qkv_b``), adds the bias at that scale and takes s_o into
the epilogue's rescale.  The golden model does the same (:func:`edgemoe.golden.units.linear.linear_fixed`
``wsh``): the accumulator's width and wrap are the tensor's, its binary point moves per output column.

The shifts belong to the weights: :func:`channel_shifts` derives them from the float rows when a model is
quantised, the packer stores them, and a project's weights read back carry them (``<weight>.wsh``) so
that they are never derived twice (a rounded row could land on another power of two).
"""
from __future__ import annotations

import numpy as np

from edgemoe.spec import ModelSpec, block_key, mlp_tensor

from .apfixed import FixedType
from .precision import pow2_type

CHANNEL_SHIFT_BITS = 3
CHANNEL_SHIFT_MAX = (1 << CHANNEL_SHIFT_BITS) - 1
WSH_TYPE = FixedType(CHANNEL_SHIFT_BITS, CHANNEL_SHIFT_BITS, False)   # the kernel's wsh_t: the shift as an integer
SHIFT_SUFFIX = ".wsh"      # params[<weight name> + SHIFT_SUFFIX]: the shifts read back from a project's weights


def scaled_tensors(spec: ModelSpec, block: int) -> list:
    """The weight tensors (checkpoint names without ``.weight``) of ``block`` that get channel scales: qkv,
    proj, fc1, fc2 (the experts' in a MoE block); the gate keeps its per-tensor type (no bias, few outputs)."""
    moe = spec.is_moe(block)
    return [block_key(block, t) for t in ("attn.qkv", "attn.proj") + tuple(mlp_tensor(p, moe) for p in ("fc1", "fc2"))]


def channel_shifts(w: np.ndarray, t: FixedType) -> np.ndarray:
    """Per output row of ``w`` [..., out, in]: how many fraction bits finer than ``t`` the row's own power-of-two
    type of ``t.W`` bits is, in 0 .. CHANNEL_SHIFT_MAX (int64 array of shape w.shape[:-1])."""
    amax = np.abs(np.asarray(w, np.float64)).max(-1)
    out = np.zeros(amax.shape, np.int64)
    for idx in np.ndindex(amax.shape):
        out[idx] = t.I - pow2_type(float(amax[idx]), t.W, t.signed).I
    return np.clip(out, 0, CHANNEL_SHIFT_MAX)


def row_type(t: FixedType, s: int) -> FixedType:
    """``t`` with ``s`` more fraction bits (same width and modes)."""
    return FixedType(t.W, t.I - int(s), t.signed, t.Q, t.O)


def quantize_rows(w: np.ndarray, t: FixedType, shifts: np.ndarray):
    """(raw codes, out-of-range mask) of ``w`` with row r in ``row_type(t, shifts[r])``."""
    w = np.asarray(w, np.float64)
    raw = np.zeros(w.shape, np.int64)
    out = np.zeros(w.shape, bool)
    for s in np.unique(shifts):
        rows = shifts == s
        raw[rows], out[rows] = row_type(t, s).quantize_clamped(w[rows])
    return raw, out


__all__ = ["CHANNEL_SHIFT_BITS", "CHANNEL_SHIFT_MAX", "WSH_TYPE", "SHIFT_SUFFIX", "scaled_tensors", "channel_shifts", "row_type",
           "quantize_rows"]
