"""The compiled HLS units of the unit test harness, called from Python with ctypes.

:class:`UnitLib` wraps the shared library :func:`edgemoe.codegen.unit_harness.build_unit_library`
builds from ``hls/templates/csim/unit_harness.cpp.j2``: every method takes and returns numpy int64
arrays of raw codes (each value's ap_fixed bit pattern, sign- or zero-extended).
"""
from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np

from edgemoe.design import Design
from edgemoe.errors import EdgeMoeError

from .config_header import DELTA_TABLES, ENGINE_MODE

# the linear calls the wrapper runs: the engine's own modes (ENG_* of the config header)
LIN_QKV, LIN_ACT, LIN_GELU, LIN_SCATTER = (ENGINE_MODE[m] for m in ("ENG_QKV", "ENG_ACT", "ENG_GELU", "ENG_SCATTER"))
BIAS_QKV, BIAS_B = 0, 1      # the wrapper's bias argument: qkv_b or b

# em_sizes: {UnitLib.sizes key: the config header's macro}, in the order the harness returns them
HARNESS_SIZES = {"tokens": "TOKENS", "embed": "EMBED", "heads": "HEADS", "head_dim": "HEAD_DIM",
                 "mlp_hidden": "MLP_HIDDEN", "num_experts": "NUM_EXPERTS", "expert_hidden": "EXPERT_HIDDEN",
                 "top_k": "TOP_K", "depth": "DEPTH", "patch_dim": "PATCH_DIM", "engine_in": "ENGINE_IN",
                 "engine_out": "ENGINE_OUT", "attn_rows": "ATTN_ROWS", "axi_bits": "AXI_BITS",
                 "rescale_span": "RESCALE_SPAN", "max_in_dim": "MAX_IN_DIM", "max_out_dim": "MAX_OUT_DIM",
                 "sm_max_len": "SM_MAX_LEN", "slots": "NUM_SLOTS"}

_P = ctypes.POINTER(ctypes.c_longlong)


def _arr(a) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, dtype=np.int64))


def _ptr(a: np.ndarray):
    return a.ctypes.data_as(_P)


class UnitLib:
    """The compiled units; every method takes and returns numpy int64 arrays of raw codes."""

    def __init__(self, path: Path, spec, prec, design: Design):
        self.path, self.spec, self.prec, self.design = Path(path), spec, prec, design
        self.lib = ctypes.CDLL(str(path))
        out = np.zeros(len(HARNESS_SIZES), dtype=np.int64)
        n = self.lib.em_sizes(_ptr(out))
        if n != len(HARNESS_SIZES):
            raise EdgeMoeError(f"{path}: em_sizes returned {n} sizes, not {len(HARNESS_SIZES)} (HARNESS_SIZES)")
        #: the compiled sizes, {"tokens": TOKENS, ...} (HARNESS_SIZES)
        self.sizes = dict(zip(HARNESS_SIZES, (int(v) for v in out)))
        depth = self.sizes["depth"]
        dl = np.zeros(len(DELTA_TABLES) * depth, dtype=np.int64)
        n = self.lib.em_deltas(_ptr(dl))
        #: the compiled per-block scale offsets, {"D_LN1": [...], ...}
        self.deltas = {name: [int(v) for v in dl[j * depth:(j + 1) * depth]]
                       for j, (name, *_) in enumerate(DELTA_TABLES[:n])}

    def block_deltas(self, block: int) -> dict:
        """The scale offsets of one block: {"D_LN1": d, ...}."""
        return {k: v[block] for k, v in self.deltas.items()}

    @staticmethod
    def _check(what: str, n: int, limit: int):
        if n > limit:
            raise EdgeMoeError(f"{what} {n} exceeds the compiled bound {limit}")

    def gelu(self, x, d_hidden: int = 0) -> np.ndarray:
        x = _arr(x)
        y = np.zeros_like(x)
        self.lib.em_gelu(_ptr(x), _ptr(y), ctypes.c_int(x.size), ctypes.c_int(d_hidden))
        return y

    def softmax(self, scores, start=None, gate: bool = False) -> np.ndarray:
        """scores [rows, n] (score_t, or gate_logit_t with ``gate``) -> probabilities (raw)."""
        s = _arr(scores)
        rows, n = s.shape
        if n > self.sizes["sm_max_len"]:
            raise EdgeMoeError(f"softmax row of {n} > SM_MAX_LEN {self.sizes['sm_max_len']}")
        st = _arr(np.zeros(rows) if start is None else np.broadcast_to(start, (rows,)))
        p = np.zeros_like(s)
        self.lib.em_softmax(ctypes.c_int(int(gate)), _ptr(s), _ptr(p), ctypes.c_int(rows), ctypes.c_int(n), _ptr(st))
        return p

    def layernorm(self, x, gamma, beta, d_out: int = 0) -> np.ndarray:
        x = _arr(x)
        self._check("layernorm rows", x.shape[0], self.sizes["tokens"])
        y = np.zeros_like(x)
        self.lib.em_layernorm(_ptr(x), _ptr(_arr(gamma)), _ptr(_arr(beta)), _ptr(y),
                              ctypes.c_int(x.shape[0]), ctypes.c_int(d_out))
        return y

    def rsqrt(self, v):
        v = _arr(v)
        y, k = np.zeros_like(v), np.zeros_like(v)
        self.lib.em_rsqrt(_ptr(v), _ptr(y), _ptr(k), ctypes.c_int(v.size))
        return y, k

    def linear(self, kind: int, x, w, bias, *, bias_kind: int = BIAS_B, gather=None, scatter=None,
               score=None, y_in=None, d_x: int = 0, d_w: int = 0, d_y: int = 0) -> np.ndarray:
        x, w, bias = _arr(x), _arr(w), _arr(bias)
        out_dim, in_dim = w.shape
        self._check("linear rows", x.shape[0], self.sizes["tokens"])
        self._check("linear in_dim", in_dim, max(self.sizes["max_in_dim"], self.sizes["patch_dim"]))
        self._check("linear out_dim", out_dim, self.sizes["max_out_dim"])
        n_rows = len(gather) if gather is not None else (len(scatter) if scatter is not None else x.shape[0])
        g = _arr(gather if gather is not None else np.zeros(n_rows))
        if kind == LIN_SCATTER:
            y = _arr(y_in).copy()
            s_idx, sc = _arr(scatter), _arr(score)
        else:
            y = np.zeros((n_rows, out_dim), dtype=np.int64)
            s_idx = sc = _arr(np.zeros(n_rows))
        rc = self.lib.em_linear(ctypes.c_int(kind), ctypes.c_int(bias_kind), _ptr(x), ctypes.c_int(x.shape[0]),
                                ctypes.c_int(int(gather is not None)), _ptr(g), _ptr(w), _ptr(bias), _ptr(y),
                                ctypes.c_int(y.shape[0]), _ptr(s_idx), _ptr(sc), ctypes.c_int(n_rows),
                                ctypes.c_int(in_dim), ctypes.c_int(out_dim), ctypes.c_int(d_x), ctypes.c_int(d_w),
                                ctypes.c_int(d_y))
        if rc != 0:
            raise EdgeMoeError("linear: kind is LIN_QKV, LIN_ACT, LIN_GELU or LIN_SCATTER (the engine's modes); the "
                               "engine runs gather or scatter (not both in one call), and qkv with the qkv bias only")
        return y

    def attention(self, qkv, d_qkv: int = 0, d_out: int = 0, d_prob: int = 0) -> np.ndarray:
        qkv = _arr(qkv)
        t = qkv.shape[0]
        self._check("attention tokens", t, self.sizes["tokens"])
        out = np.zeros((t, self.sizes["embed"]), dtype=np.int64)
        self.lib.em_attention(_ptr(qkv), _ptr(out), ctypes.c_int(t), ctypes.c_int(d_qkv), ctypes.c_int(d_out),
                              ctypes.c_int(d_prob))
        return out

    def _route_out(self, t: int) -> dict:
        e, k, T = self.sizes["num_experts"], self.sizes["top_k"], self.sizes["tokens"]
        return dict(logits=np.zeros((t, e), np.int64), probs=np.zeros((t, e), np.int64),
                    topk_idx=np.zeros((t, k), np.int64), topk_score=np.zeros((t, k), np.int64),
                    queue_tok=np.zeros((e, T), np.int64), queue_slot=np.zeros((e, T), np.int64),
                    queue_score=np.zeros((e, T), np.int64), queue_len=np.zeros(e, np.int64))

    @staticmethod
    def _route_queues(r: dict) -> dict:
        r["queues"] = [(r["queue_tok"][i, :r["queue_len"][i]], r["queue_score"][i, :r["queue_len"][i]])
                       for i in range(len(r["queue_len"]))]
        return r

    _ROUTE_OUT = ("probs", "topk_idx", "topk_score", "queue_tok", "queue_slot", "queue_score", "queue_len")

    def moe_route(self, x, w_gate, d_x: int = 0, d_gw: int = 0) -> dict:
        """The gate on the linear engine, then the route: x [t][embed], w_gate [experts][embed]."""
        x, wg = _arr(x), _arr(w_gate)
        t = x.shape[0]
        self._check("route tokens", t, self.sizes["tokens"])
        r = self._route_out(t)
        self.lib.em_moe_route(_ptr(x), _ptr(wg), ctypes.c_int(t), ctypes.c_int(d_x), ctypes.c_int(d_gw),
                              _ptr(r["logits"]), *(_ptr(r[n]) for n in self._ROUTE_OUT))
        return self._route_queues(r)

    def route_logits(self, logits) -> dict:
        """The route alone (softmax, top-k, queues) from gate logits [t][experts] (raw gate_logit_t)."""
        lg = _arr(logits)
        t = lg.shape[0]
        self._check("route tokens", t, self.sizes["tokens"])
        r = self._route_out(t)
        r["logits"] = lg.copy()
        self.lib.em_route_logits(_ptr(lg), ctypes.c_int(t), *(_ptr(r[n]) for n in self._ROUTE_OUT))
        return self._route_queues(r)

    def patch_embed(self, pixels, w, b, cls, pos) -> np.ndarray:
        pix = _arr(pixels)
        p = pix.shape[0]
        out = np.zeros((p + 1, self.sizes["embed"]), dtype=np.int64)
        self.lib.em_patch_embed(_ptr(pix), _ptr(_arr(w)), _ptr(_arr(b)), _ptr(_arr(cls)), _ptr(_arr(pos)),
                                _ptr(out), ctypes.c_int(p))
        return out

    def residual_slots(self, x, ys):
        """The MoE combination of one image: (x + combined, combined), ys: [slots][tokens * embed]."""
        x = _arr(x).copy()
        ys = _arr(ys)
        n = self.sizes["tokens"] * self.sizes["embed"]
        if x.size != n or ys.shape != (self.sizes["slots"], n):
            raise EdgeMoeError(f"residual_slots: x of {n} values and {self.sizes['slots']} slots of {n} values")
        comb = np.zeros(n, np.int64)
        self.lib.em_residual_slots(_ptr(x), _ptr(ys), _ptr(comb))
        return x, comb

    def residual(self, x, y, score=None) -> np.ndarray:
        x = _arr(x).copy()
        y = _arr(y)
        sc = _arr(score if score is not None else np.zeros(x.size))
        self.lib.em_residual(_ptr(x), _ptr(y), ctypes.c_int(x.size), _ptr(sc), ctypes.c_int(score is not None))
        return x


__all__ = ["UnitLib", "HARNESS_SIZES", "LIN_QKV", "LIN_ACT", "LIN_GELU", "LIN_SCATTER", "BIAS_QKV", "BIAS_B"]
