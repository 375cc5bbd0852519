"""Memory layout of the generated kernel and the packer that writes it: :class:`Layout`, the buffers
of ``weights.bin`` with their word offsets, the input / output / scratch sizes, the tap table and the
layout header's values, and the filling of the buffers from a state_dict (and back).  How a buffer's
codes sit in AXI words (engine tile order included) is :mod:`edgemoe.codegen.word_packing`'s, the
block stages and their tap ids are :mod:`edgemoe.codegen.tap_stages`'.

``weights.bin`` has two regions: the *one-time* parameters (patch bias, CLS, positions, LayerNorm
parameters, every bias) that the kernel copies on chip when its reload flag is set, then the
*streamed* weights (patch embedding, qkv, proj, dense fc1/fc2, experts, gates) read per layer.
Scratch holds the debug taps: one word-aligned region per tap id, each value a 32-bit raw code
(sign- or zero-extended)."""
from __future__ import annotations

import hashlib
from math import lcm

import numpy as np

from edgemoe.errors import EdgeMoeError
from edgemoe.golden.apfixed import FixedType
from edgemoe.golden.block_types import block_types
from edgemoe.golden.channel_scales import SHIFT_SUFFIX, WSH_TYPE
from edgemoe.golden.fixed_model import quantize_params
from edgemoe.golden.precision import Precision
from edgemoe.design import Design
from edgemoe.kernel_interface import TAP_ALL, TAP_BITS, TAP_NONE, storage_bits  # TAP_*: the layout header's values
from edgemoe.spec import ModelSpec, block_key, mlp_tensor

from .tap_stages import BLOCK_STAGES, DENSE_ONLY, MOE_ONLY, STAGES_PER_BLOCK, num_tap_ids, tap_id
from .word_packing import Buffer, pack_raw


def _storage(t: FixedType) -> FixedType:
    """A parameter type as stored (modes do not matter for the bits)."""
    return FixedType(t.W, t.I, t.signed)


class Layout:
    """Buffers of ``weights.bin``, the input / output / scratch sizes and the tap table."""

    def __init__(self, spec: ModelSpec, prec: Precision, design: Design):
        self.spec, self.prec, self.design = spec, prec, design
        self.axi = design.axi_bits
        t = prec.types
        d, T = spec.embed, spec.tokens
        bufs = []

        eng = (design.engine_out, design.engine_in)

        def add(name, shape, role_t, region, tiled=False):
            bufs.append(Buffer(name, tuple(int(s) for s in shape), _storage(role_t), region,
                               tile=eng if tiled else None, ports=design.weight_ports if tiled else 1))

        # one-time region
        add("patch_b", (d,), t["bias"], "onetime")
        add("cls", (d,), t["bias"], "onetime")
        add("pos", (T, d), t["bias"], "onetime")
        add("ln_params", (spec.depth, 4, d), t["ln_param"], "onetime")
        add("qkv_b", (spec.depth, 3 * d), t["qkv_b"], "onetime")
        self.b_off = {"proj": [], "fc1": [], "fc2": []}
        n_b = 0
        b_parts = []
        for i in range(spec.depth):
            moe = spec.is_moe(i)
            parts = [("proj", (d,)),
                     ("fc1", (spec.num_experts, spec.expert_hidden) if moe else (spec.mlp_hidden,)),
                     ("fc2", (spec.num_experts, d) if moe else (d,))]
            for name, shape in parts:
                self.b_off[name].append(n_b)
                n_b += int(np.prod(shape))
                b_parts.append((i, name, shape))
        self.b_parts = b_parts
        add("biases", (n_b,), t["b"], "onetime")
        self.total_b = n_b
        self.per_channel = "per-channel" in prec.options
        if self.per_channel:   # the per-channel weight scales beside the biases (golden/channel_scales.py)
            add("qkv_wsh", (spec.depth, 3 * d), WSH_TYPE, "onetime")
            add("wsh", (n_b,), WSH_TYPE, "onetime")
        # streamed region
        add("patch_w", (d, spec.patch_dim), t["patch_w"], "stream", tiled=True)
        tps = block_types(spec, prec)
        for i in range(spec.depth):
            add(f"blocks.{i}.qkv_w", (3 * d, d), tps["D_W_QKV"][i], "stream", tiled=True)
            add(f"blocks.{i}.proj_w", (d, d), tps["D_W_PROJ"][i], "stream", tiled=True)
            if spec.is_moe(i):
                e, h = spec.num_experts, spec.expert_hidden
                add(f"blocks.{i}.fc1_w", (e, h, d), tps["D_W_FC1"][i], "stream", tiled=True)
                add(f"blocks.{i}.fc2_w", (e, d, h), tps["D_W_FC2"][i], "stream", tiled=True)
                add(f"blocks.{i}.gate_w", (spec.num_tasks, e, d), tps["D_GATE_W"][i], "stream", tiled=True)
            else:
                h = spec.mlp_hidden
                add(f"blocks.{i}.fc1_w", (h, d), tps["D_W_FC1"][i], "stream", tiled=True)
                add(f"blocks.{i}.fc2_w", (d, h), tps["D_W_FC2"][i], "stream", tiled=True)
        off = 0
        for b in bufs:
            b.word_offset = off
            off += b.words(self.axi)
        self.onetime_words = sum(b.words(self.axi) for b in bufs if b.region == "onetime")
        self.weight_words = off
        self.buffers = {b.name: b for b in bufs}
        # activations
        self.pix_t = _storage(t["pixel"])
        self.act_t = t["act"]
        self.pix_words = -(-spec.num_patches * spec.patch_dim // (self.axi // storage_bits(self.pix_t.W)))
        self.out_words = -(-T * d // (self.axi // storage_bits(self.act_t.W)))
        self.taps = self._tap_table()
        self.scratch_words = max([tp["word_offset"] + tp["words"] for tp in self.taps] + [1])

    # --- taps --------------------------------------------------------------------------------
    def _tap_table(self) -> list:
        spec, prec = self.spec, self.prec
        t = prec.types
        T, d = spec.tokens, spec.embed
        e, k = spec.num_experts, spec.top_k
        tps = block_types(spec, prec)
        idx_t = FixedType(max(1, (max(e - 1, 1)).bit_length()), max(1, (max(e - 1, 1)).bit_length()), False)
        rows = [dict(id=0, name="patch_embed", block=-1, stage="patch_embed", shape=[T, d], type=t["act"])]
        for i in range(spec.depth):
            moe = spec.is_moe(i)
            hid = spec.expert_hidden if moe else spec.mlp_hidden
            kinds = {
                "ln1": ([T, d], tps["D_LN1"][i]), "qkv": ([T, 3 * d], tps["D_QKV"][i]),
                "attn_out": ([T, d], tps["D_ATTN_OUT"][i]), "proj": ([T, d], t["act"]),
                "res1": ([T, d], t["act"]), "ln2": ([T, d], tps["D_LN2"][i]),
                "fc1": ([T, hid], tps["D_HIDDEN"][i]),
                "gate_logits": ([T, e], t["gate_logit"]), "gate_probs": ([T, e], t["gate_score"]),
                "topk_idx": ([T, k], idx_t), "topk_score": ([T, k], t["gate_score"]),
                "mlp_out": ([T, d], t["act"]), "out": ([T, d], t["act"]),
            }
            for stage in BLOCK_STAGES:
                if (stage in DENSE_ONLY and moe) or (stage in MOE_ONLY and not moe):
                    continue
                shape, ft = kinds[stage]
                rows.append(dict(id=tap_id(i, stage), name=f"blocks.{i}.{stage}", block=i, stage=stage,
                                 shape=shape, type=ft))
        off = 0
        per = self.axi // TAP_BITS
        for r in rows:
            if r["type"].W > TAP_BITS:
                raise EdgeMoeError(f"tap {r['name']}: {r['type'].cpp} is wider than {TAP_BITS} bits")
            n = int(np.prod(r["shape"]))
            r["word_offset"] = off
            r["words"] = -(-n // per)
            off += r["words"]
        return rows

    def tap_offsets(self) -> list:
        """Word offset in scratch of every tap id (-1: the id does not exist in this model)."""
        offs = [-1] * num_tap_ids(self.spec)
        for r in self.taps:
            offs[r["id"]] = r["word_offset"]
        return offs

    def tap_manifest(self) -> list:
        return [dict(id=r["id"], name=r["name"], block=r["block"], stage=r["stage"], shape=r["shape"],
                     type=r["type"].cpp, word_offset=r["word_offset"], words=r["words"]) for r in self.taps]

    # --- packing -----------------------------------------------------------------------------
    def fill(self, params: dict, saturate_params: bool = False, quantized: dict | None = None) -> None:
        """Raw codes of every buffer from the float state_dict, quantised by the golden model's own
        :func:`~edgemoe.golden.fixed_model.quantize_params` (a parameter out of its type's range is an
        error, or with ``saturate_params`` clamped to the type's min / max: the packed codes are
        exactly the fixed golden's). ``quantized``: that function's result, when already at hand."""
        spec = self.spec
        q = quantized if quantized is not None else quantize_params(spec, self.prec, params, saturate_params)
        raw = lambda name: q[name].raw  # noqa: E731
        B = self.buffers
        B["patch_b"].raw = raw("patch_b")
        B["cls"].raw = raw("cls")
        B["pos"].raw = raw("pos")
        k = block_key
        B["ln_params"].raw = np.stack([np.stack([raw(k(i, "norm1.weight")), raw(k(i, "norm1.bias")),
                                                 raw(k(i, "norm2.weight")), raw(k(i, "norm2.bias"))])
                                       for i in range(spec.depth)])
        B["qkv_b"].raw = np.stack([raw(k(i, "attn.qkv.bias")) for i in range(spec.depth)])
        B["biases"].raw = np.concatenate([raw(self._layer(i, name) + ".bias").reshape(-1) for i, name, _ in self.b_parts])
        if self.per_channel:
            B["qkv_wsh"].raw = np.stack([q[k(i, "attn.qkv.weight") + SHIFT_SUFFIX] for i in range(spec.depth)])
            B["wsh"].raw = np.concatenate([np.asarray(q[self._layer(i, name) + ".weight" + SHIFT_SUFFIX]).reshape(-1)
                                           for i, name, _ in self.b_parts])
        B["patch_w"].raw = raw("patch_w")
        for i in range(spec.depth):
            p = f"blocks.{i}."
            B[p + "qkv_w"].raw = raw(k(i, "attn.qkv.weight"))
            B[p + "proj_w"].raw = raw(k(i, "attn.proj.weight"))
            if spec.is_moe(i):
                B[p + "fc1_w"].raw = raw(k(i, "mlp.experts.htoh4.weight"))
                B[p + "fc2_w"].raw = raw(k(i, "mlp.experts.h4toh.weight"))
                B[p + "gate_w"].raw = np.stack([raw(k(i, f"mlp.gate.{t}.w_gate")) for t in range(spec.num_tasks)])
            else:
                B[p + "fc1_w"].raw = raw(k(i, "mlp.fc1.weight"))
                B[p + "fc2_w"].raw = raw(k(i, "mlp.fc2.weight"))
        for b in self.buffers.values():
            if tuple(b.raw.shape) != b.shape:
                raise EdgeMoeError(f"internal: buffer {b.name} has shape {b.raw.shape}, expected {b.shape}")

    def write_weights(self, path) -> list:
        """Write weights.bin; returns the manifest entries of its buffers."""
        entries = []
        wb = self.axi // 8
        with open(path, "wb") as f:
            for b in self.buffers.values():
                data = b.to_bytes(self.axi)
                assert f.tell() == b.word_offset * wb
                f.write(data)
                e = dict(name=b.name, file="weights.bin", shape=list(b.shape), type=b.ftype.cpp,
                         region=b.region, storage_bits=b.sb, byte_offset=b.word_offset * wb,
                         size=len(data), sha256=hashlib.sha256(data).hexdigest(), order="row-major")
                if b.tile is not None:
                    e.update(order="tiles", tile=list(b.tile), tile_words=b.tile_words(self.axi),
                             padded_out=b.padded_out, matrix_words=b.matrix_words(self.axi), ports=b.ports,
                             port_words=b.matrix_words(self.axi) // b.ports)
                entries.append(e)
        return entries

    def pack_pixels(self, pixels_raw) -> bytes:
        """Quantised, patchified pixels [patches, patch_dim] -> input_pixels.bin bytes (one image)."""
        return pack_raw(pixels_raw, self.pix_t, self.axi)

    def engine_words(self) -> list:
        """(name, value) defines of the tile-order weights: words per tile and per expert matrix."""
        B = self.buffers
        spec = self.spec
        w = [b for n, b in B.items() if b.tile is not None and n != "patch_w"]
        tw = {b.tile_words(self.axi) for b in w}
        if len(tw) != 1:
            raise EdgeMoeError(f"linear weights with different storage widths ({sorted(tw)} words per tile): the "
                               "MoE gate runs on the linear engine, so gate_w must be stored like w")
        out = [("TILE_WORDS", tw.pop()), ("PATCH_TILE_WORDS", B["patch_w"].tile_words(self.axi))]
        moe = [i for i in range(spec.depth) if spec.is_moe(i)]
        if moe:
            gate = B[f"blocks.{moe[0]}.gate_w"]
            out += [("EXPERT_FC1_WORDS", B[f"blocks.{moe[0]}.fc1_w"].matrix_words(self.axi)),
                    ("EXPERT_FC2_WORDS", B[f"blocks.{moe[0]}.fc2_w"].matrix_words(self.axi)),
                    # the gate's expert rows padded to whole output tiles; one task's gate in words
                    ("GATE_OUT", gate.padded_out), ("GATE_TASK_WORDS", gate.matrix_words(self.axi))]
        else:
            out += [("EXPERT_FC1_WORDS", 0), ("EXPERT_FC2_WORDS", 0),
                    ("GATE_OUT", -(-spec.num_experts // self.design.engine_out) * self.design.engine_out),
                    ("GATE_TASK_WORDS", 0)]
        # the on-chip pixel cache is filled one AXI word per cycle: its partition covers a word's lanes
        out.append(("PIX_PARTITION", lcm(self.design.act_partition, self.axi // storage_bits(self.pix_t.W))))
        return out

    def buffer_raw(self, data: bytes, name: str) -> np.ndarray:
        """Raw codes of buffer ``name`` (logical shape) read from the bytes of weights.bin."""
        b = self.buffers[name]
        wb = self.axi // 8
        start = b.word_offset * wb
        return b.from_bytes(data[start:start + b.words(self.axi) * wb], self.axi)

    def layout_context(self) -> dict:
        B = self.buffers
        spec = self.spec
        blk = lambda n: [B[f"blocks.{i}.{n}"].word_offset for i in range(spec.depth)]  # noqa: E731
        gate = [B[f"blocks.{i}.gate_w"].word_offset if spec.is_moe(i) else 0 for i in range(spec.depth)]
        return dict(
            words=[("W_OFF_PATCH_B", B["patch_b"].word_offset), ("W_OFF_CLS", B["cls"].word_offset),
                   ("W_OFF_POS", B["pos"].word_offset), ("W_OFF_LN", B["ln_params"].word_offset),
                   ("W_OFF_QKV_B", B["qkv_b"].word_offset), ("W_OFF_BIASES", B["biases"].word_offset),
                   ("W_OFF_PATCH_W", B["patch_w"].word_offset), ("WEIGHT_WORDS", self.weight_words),
                   ("ONETIME_WORDS", self.onetime_words), ("PIX_WORDS", self.pix_words),
                   ("OUT_WORDS", self.out_words), ("SCRATCH_WORDS", self.scratch_words),
                   ("TOTAL_B", self.total_b), ("NUM_TAP_IDS", num_tap_ids(spec)),
                   *([("W_OFF_QKV_WSH", B["qkv_wsh"].word_offset), ("W_OFF_WSH", B["wsh"].word_offset)]
                     if self.per_channel else []),
                   ("STAGES_PER_BLOCK", STAGES_PER_BLOCK), ("TAP_BITS", TAP_BITS)] + self.engine_words(),
            stages=list(enumerate(BLOCK_STAGES)),
            tables=[("W_OFF_QKV", blk("qkv_w")), ("W_OFF_PROJ", blk("proj_w")), ("W_OFF_FC1", blk("fc1_w")),
                    ("W_OFF_FC2", blk("fc2_w")), ("W_OFF_GATE", gate),
                    ("B_OFF_PROJ", self.b_off["proj"]), ("B_OFF_FC1", self.b_off["fc1"]),
                    ("B_OFF_FC2", self.b_off["fc2"])],
            tap_offsets=self.tap_offsets(), tap_none=TAP_NONE, tap_all=TAP_ALL)

    def _layer(self, i: int, name: str) -> str:
        """The checkpoint name (without .weight / .bias) of block ``i``'s layer ``name`` (qkv, proj, fc1, fc2)."""
        if name in ("qkv", "proj"):
            return block_key(i, f"attn.{name}")
        return block_key(i, mlp_tensor(name, self.spec.is_moe(i)))

    def _shifts(self, raw: dict) -> dict:
        """``{weight name: per-channel shifts}`` read back from the wsh buffers (empty without them)."""
        if not self.per_channel:
            return {}
        out = {block_key(i, "attn.qkv.weight"): raw["qkv_wsh"][i] for i in range(self.spec.depth)}
        for i, name, shape in self.b_parts:
            out[self._layer(i, name) + ".weight"] = self._b_slice(raw["wsh"], i, name, shape)
        return out

    def _b_slice(self, flat: np.ndarray, i: int, name: str, shape: tuple) -> np.ndarray:
        """Block ``i``'s part ``name`` (proj, fc1, fc2) of an array laid out as the biases."""
        o = self.b_off[name][i]
        return flat[o:o + int(np.prod(shape))].reshape(shape)

    def params_from_weights(self, data: bytes) -> dict:
        """Float state_dict (exactly representable values) rebuilt from weights.bin: quantising it
        again gives the same raw codes, so the golden fixed model can run from the project alone.
        With per-channel weight scales the rows are read at their own scales, and the shifts come back
        as ``<weight name>.wsh`` (golden/channel_scales.py)."""
        spec = self.spec
        raw = {name: self.buffer_raw(data, name) for name in self.buffers}
        shifts = self._shifts(raw)
        weight_of = {f"blocks.{i}.{n}_w": self._layer(i, n) + ".weight" for i in range(spec.depth)
                     for n in ("qkv", "proj", "fc1", "fc2")}

        def fl(name):
            t = self.buffers[name].ftype
            sh = shifts.get(weight_of.get(name))
            if sh is None:
                return t.to_float(raw[name])
            return t.to_float(raw[name]) * np.exp2(-np.asarray(sh, np.float64))[..., None]
        p = {}
        d = spec.embed
        p["backbone.patch_embed.proj.weight"] = fl("patch_w").reshape(d, spec.in_chans, spec.patch, spec.patch)
        p["backbone.patch_embed.proj.bias"] = fl("patch_b")
        p["backbone.cls_token"] = fl("cls").reshape(1, 1, d)
        p["backbone.pos_embed"] = fl("pos").reshape(1, spec.tokens, d)
        ln = fl("ln_params")
        qb = fl("qkv_b")
        biases = fl("biases")
        for i in range(spec.depth):
            k = lambda n, i=i: block_key(i, n)  # noqa: E731
            p[k("norm1.weight")], p[k("norm1.bias")], p[k("norm2.weight")], p[k("norm2.bias")] = ln[i]
            p[k("attn.qkv.bias")] = qb[i]
            for n in ("qkv", "proj", "fc1", "fc2"):
                p[self._layer(i, n) + ".weight"] = fl(f"blocks.{i}.{n}_w")
            if spec.is_moe(i):
                g = fl(f"blocks.{i}.gate_w")
                for t in range(spec.num_tasks):
                    p[k(f"mlp.gate.{t}.w_gate")] = g[t].T
        for i, name, shape in self.b_parts:
            p[self._layer(i, name) + ".bias"] = self._b_slice(biases, i, name, shape)
        for name, sh in shifts.items():
            p[name + SHIFT_SUFFIX] = np.asarray(sh, np.int64)
        return p


__all__ = ["Layout"]
