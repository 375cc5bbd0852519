"""Task heads in numpy for the host runtime (the board's ARM CPU): no torch on the board.

Same maths as :class:`edgemoe.golden.model.UpHead` (M3ViT's up head, eval mode): drop CLS,
LayerNorm, tokens -> feature map, 4 x (conv3x3 + BN + ReLU, 2x bilinear upsample with
align_corners=False), the 1x1 conv to the task's channels placed before the last upsample as
M3ViT does. BatchNorm is folded into the conv before it, once per call.
"""
from __future__ import annotations

import numpy as np

from edgemoe.errors import EdgeMoeError

BN_EPS = 1e-5  # torch BatchNorm2d / SyncBN default
ROUNDS = 4


def layernorm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    x64 = x.astype(np.float64)  # statistics in float64: cheap here and closer to torch's float32
    mu = x64.mean(-1, keepdims=True)
    var = ((x64 - mu) ** 2).mean(-1, keepdims=True)
    return ((x64 - mu) / np.sqrt(var + eps) * w + b).astype(np.float32)


def fold_bn(w, b, gamma, beta, mean, var, eps: float = BN_EPS):
    """conv then BN (eval) == one conv with scaled weights and a shifted bias."""
    s = gamma / np.sqrt(var.astype(np.float64) + eps)
    return (w * s[:, None, None, None]).astype(np.float32), ((b - mean) * s + beta).astype(np.float32)


def conv3x3(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """x [C, H, W], w [O, C, 3, 3], padding 1 -> [O, H, W].

    im2col + matmul with the reduction split by kernel tap: out = sum over the 9 taps of
    W[:, :, ky, kx] @ shifted(x). Each term is one BLAS matmul [O, C] x [C, H*W], and only one
    shifted copy of x lives at a time instead of a 9x larger column matrix (matters on a board).
    """
    c, h, wd = x.shape
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    out = np.broadcast_to(b[:, None], (w.shape[0], h * wd)).copy()
    for ky in range(3):
        for kx in range(3):
            cols = np.ascontiguousarray(xp[:, ky:ky + h, kx:kx + wd]).reshape(c, h * wd)
            out += w[:, :, ky, kx] @ cols
    return out.reshape(-1, h, wd)


def _linear_taps(n_in: int, n_out: int):
    """Source indices and weights of torch's bilinear resize (align_corners=False) along one axis."""
    scale = n_in / n_out
    src = np.maximum((np.arange(n_out, dtype=np.float64) + 0.5) * scale - 0.5, 0.0)
    i0 = np.minimum(src.astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    l1 = (src - i0).astype(np.float32)
    return i0, i1, 1.0 - l1, l1


def resize_bilinear(x: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """[C, H, W] -> [C, out_h, out_w], separable: 2 taps per axis, O(output) work."""
    i0, i1, a0, a1 = _linear_taps(x.shape[1], out_h)
    x = x[:, i0, :] * a0[None, :, None] + x[:, i1, :] * a1[None, :, None]
    j0, j1, b0, b1 = _linear_taps(x.shape[2], out_w)
    return x[:, :, j0] * b0 + x[:, :, j1] * b1


def run_head(tokens: np.ndarray, head_params: dict, spec, task) -> np.ndarray:
    """Encoder output (tokens, d) -> task output [C, H, W] float32; ``spec``: the
    :class:`edgemoe.spec.ModelSpec` (on the board: of the package's manifest)."""
    t = spec.task_index(task)
    tokens = np.asarray(tokens, dtype=np.float32)
    if tokens.shape != spec.output_shape:
        raise EdgeMoeError(f"encoder output has shape {tokens.shape}; {spec.name} expects "
                           f"{spec.output_shape}")
    p = head_params
    try:
        x = layernorm(tokens[1:], p["norm.weight"], p["norm.bias"], spec.ln_eps)  # drop CLS
        x = np.ascontiguousarray(x.T).reshape(spec.embed, *spec.grid)
        for j in range(ROUNDS):
            bn = f"syncbn_fc_{j}."
            w, b = fold_bn(p[f"conv_{j}.weight"], p[f"conv_{j}.bias"], p[bn + "weight"], p[bn + "bias"],
                           p[bn + "running_mean"], p[bn + "running_var"])
            x = np.maximum(conv3x3(x, w, b), 0.0)
            if j == ROUNDS - 1:  # 1x1 conv before the last upsample: fewer channels to upsample
                w1 = p[f"conv_{ROUNDS}.weight"]
                x = (w1.reshape(w1.shape[0], -1) @ x.reshape(x.shape[0], -1)
                     + p[f"conv_{ROUNDS}.bias"][:, None]).reshape(-1, *x.shape[1:])
            x = resize_bilinear(x, 2 * x.shape[1], 2 * x.shape[2])
    except KeyError as e:
        raise EdgeMoeError(f"head parameter {e.args[0]} missing for task {t} "
                           f"({spec.tasks[t].name})") from None
    if x.shape[1:] != (spec.img_h, spec.img_w):
        x = resize_bilinear(x, spec.img_h, spec.img_w)
    if x.shape[0] != spec.tasks[t].channels:
        raise EdgeMoeError(f"head of task {spec.tasks[t].name} gives {x.shape[0]} channels; "
                           f"the spec says {spec.tasks[t].channels}")
    return x.astype(np.float32)


__all__ = ["run_head", "conv3x3", "resize_bilinear", "fold_bn", "layernorm"]
