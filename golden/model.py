"""The float PyTorch golden model of M3ViT: encoder (dense + multi-gate MoE blocks) and task heads.

Every size comes from a :class:`~edgemoe.spec.ModelSpec`. Parameter names follow M3ViT's
checkpoints (``backbone.blocks.{i}.mlp.experts.htoh4.weight`` ...) so that real checkpoints load
without renaming. The task heads (``heads.{t}.*``, ``t`` = task index) reuse the layer names of
M3ViT's ``VisionTransformerUpHead`` (``norm``, ``conv_0..4``, ``syncbn_fc_0..3``).

The encoder is the reference for the fixed-point model and the hardware: ``encode(..., taps=dict)``
exposes every intermediate tensor under the names the fixed-point model uses.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgemoe.errors import EdgeMoeError
from edgemoe.spec import ModelSpec

# M3ViT's up head: 4 rounds of conv3x3 + BN + ReLU with a 2x bilinear upsample after each.
# align_corners=False is confirmed: BaseDecodeHead defaults to False and the NYUD configs
# (head_kwargs.align_corners) set False.
ALIGN_CORNERS = False
HEAD_ROUNDS = 4


def _tap(taps, name, value):
    if taps is not None:
        taps[name] = value


class PatchEmbed(nn.Module):
    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.proj = nn.Conv2d(spec.in_chans, spec.embed, spec.patch, stride=spec.patch)

    def forward(self, x):
        # [B, d, gh, gw] -> [B, patches, d], patches row-major
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    def __init__(self, spec: ModelSpec):
        super().__init__()
        d = spec.embed
        self.heads, self.head_dim, self.scale = spec.heads, spec.head_dim, spec.scale
        self.qkv = nn.Linear(d, 3 * d, bias=spec.qkv_bias)  # rows: Q, then K, then V
        self.proj = nn.Linear(d, d)

    def forward(self, x, taps=None, p=""):
        b, t, d = x.shape
        # [B, T, 3d] -> 3 x [B, heads, T, head_dim]
        q, k, v = self.qkv(x).reshape(b, t, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        _tap(taps, p + "q", q), _tap(taps, p + "k", k), _tap(taps, p + "v", v)
        scores = (q @ k.transpose(-2, -1)) * self.scale  # q.k first, then the scale (hardware order)
        probs = scores.softmax(dim=-1)
        out = (probs @ v).transpose(1, 2).reshape(b, t, d)
        _tap(taps, p + "scores", scores), _tap(taps, p + "attn_probs", probs), _tap(taps, p + "attn_out", out)
        y = self.proj(out)
        _tap(taps, p + "proj", y)
        return y


class Mlp(nn.Module):
    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.fc1 = nn.Linear(spec.embed, spec.mlp_hidden)
        self.fc2 = nn.Linear(spec.mlp_hidden, spec.embed)

    def forward(self, x, task=None, taps=None, p="", dense=False):
        h = F.gelu(self.fc1(x))  # exact erf GELU
        _tap(taps, p + "fc1", h)
        return self.fc2(h)


class ExpertLinear(nn.Module):
    """E independent linear layers stored as one tensor: weight [E, out, in], bias [E, out]."""

    def __init__(self, experts: int, n_in: int, n_out: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(experts, n_out, n_in))
        self.bias = nn.Parameter(torch.empty(experts, n_out))


class Experts(nn.Module):
    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.htoh4 = ExpertLinear(spec.num_experts, spec.embed, spec.expert_hidden)
        self.h4toh = ExpertLinear(spec.num_experts, spec.expert_hidden, spec.embed)


class Gate(nn.Module):
    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.w_gate = nn.Parameter(torch.empty(spec.embed, spec.num_experts))


class MoeMlp(nn.Module):
    """Multi-gate MoE MLP: one gate per task, shared experts, top-k with full-softmax weights."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.top_k = spec.top_k
        self.experts = Experts(spec)
        self.gate = nn.ModuleList(Gate(spec) for _ in spec.tasks)

    def gate_weight(self, task):
        if torch.is_tensor(task):
            # export: one graph serves every task, the gate is picked by the task input
            return torch.stack([g.w_gate for g in self.gate])[task.reshape(())]
        return self.gate[task].w_gate

    def forward(self, x, task, taps=None, p="", dense=False):
        logits = x @ self.gate_weight(task)                 # no bias, no noise at inference
        probs = logits.softmax(dim=-1)                      # over ALL experts
        idx = logits.topk(self.top_k, dim=-1).indices       # ranked by logit, as the hardware does
        score = probs.gather(-1, idx)                       # full-softmax weights, NOT renormalised
        _tap(taps, p + "gate_logits", logits), _tap(taps, p + "gate_probs", probs)
        _tap(taps, p + "topk_idx", idx), _tap(taps, p + "topk_score", score)
        if taps is not None:  # tokens per expert, per image [B, E]
            taps[p + "expert_load"] = F.one_hot(idx, probs.shape[-1]).sum(dim=(1, 2))
        if dense:
            return self._dense(x, probs, idx)
        return self._dispatch(x, score, idx)

    def _expert(self, x, e):
        w1, b1 = self.experts.htoh4.weight, self.experts.htoh4.bias
        w2, b2 = self.experts.h4toh.weight, self.experts.h4toh.bias
        return F.linear(F.gelu(F.linear(x, w1[e], b1[e])), w2[e], b2[e])

    def _dispatch(self, x, score, idx):
        """Eager: each expert that got tokens runs over its own queue only (as the hardware does)."""
        b, t, d = x.shape
        flat_x, flat_idx, flat_score = x.reshape(-1, d), idx.reshape(b * t, -1), score.reshape(b * t, -1)
        out = torch.zeros_like(flat_x)
        load = torch.bincount(flat_idx.reshape(-1), minlength=len(self.experts.htoh4.weight))
        for e in torch.nonzero(load).flatten().tolist():
            tok, slot = torch.nonzero(flat_idx == e, as_tuple=True)
            y = self._expert(flat_x[tok], e)
            out.index_add_(0, tok, flat_score[tok, slot].unsqueeze(-1) * y)
        return out.reshape(b, t, d)

    def _dense(self, x, probs, idx):
        """Export: every expert over every token, masked to the top-k. Equal maths, static graph."""
        w1, b1 = self.experts.htoh4.weight, self.experts.htoh4.bias
        w2, b2 = self.experts.h4toh.weight, self.experts.h4toh.bias
        weight = probs * torch.zeros_like(probs).scatter(-1, idx, 1.0)      # [B, T, E]
        h = F.gelu(x.unsqueeze(1) @ w1.transpose(1, 2) + b1.unsqueeze(1))   # [B, E, T, hidden]
        y = h @ w2.transpose(1, 2) + b2.unsqueeze(1)                        # [B, E, T, d]
        return (weight.transpose(1, 2).unsqueeze(-1) * y).sum(dim=1)


class Block(nn.Module):
    def __init__(self, spec: ModelSpec, moe: bool):
        super().__init__()
        self.moe = moe
        self.norm1 = nn.LayerNorm(spec.embed, eps=spec.ln_eps)
        self.attn = Attention(spec)
        self.norm2 = nn.LayerNorm(spec.embed, eps=spec.ln_eps)
        self.mlp = MoeMlp(spec) if moe else Mlp(spec)

    def forward(self, x, task, taps=None, p="", dense=False):
        h = self.norm1(x)
        _tap(taps, p + "ln1", h)
        x = x + self.attn(h, taps, p)
        _tap(taps, p + "res1", x)
        h = self.norm2(x)
        _tap(taps, p + "ln2", h)
        y = self.mlp(h, task, taps, p, dense)
        _tap(taps, p + "mlp_out", y)
        x = x + y
        _tap(taps, p + "out", x)
        return x


class Backbone(nn.Module):
    """The encoder: patch embedding, CLS, positions, blocks. No final norm (as in M3ViT)."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.spec = spec
        self.patch_embed = PatchEmbed(spec)
        self.cls_token = nn.Parameter(torch.empty(1, 1, spec.embed))
        self.pos_embed = nn.Parameter(torch.empty(1, spec.tokens, spec.embed))
        self.blocks = nn.ModuleList(Block(spec, spec.is_moe(i)) for i in range(spec.depth))

    def forward(self, x, task, taps=None, dense=False):
        patches = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), patches], dim=1) + self.pos_embed
        _tap(taps, "patch_embed", x)
        for i, blk in enumerate(self.blocks):
            x = blk(x, task, taps, f"blocks.{i}.", dense)
        return x


class UpHead(nn.Module):
    """M3ViT's task decoder ("up head"), eval mode."""

    def __init__(self, spec: ModelSpec, channels: int):
        super().__init__()
        self.spec = spec
        c = spec.decoder_channels
        self.norm = nn.LayerNorm(spec.embed, eps=spec.ln_eps)
        for j in range(HEAD_ROUNDS):
            setattr(self, f"conv_{j}", nn.Conv2d(spec.embed if j == 0 else c, c, 3, padding=1))
            setattr(self, f"syncbn_fc_{j}", nn.BatchNorm2d(c))
        setattr(self, f"conv_{HEAD_ROUNDS}", nn.Conv2d(c, channels, 1))

    def forward(self, tokens):
        spec = self.spec
        b = tokens.shape[0]
        x = self.norm(tokens[:, 1:])                      # drop CLS
        x = x.transpose(1, 2).reshape(b, spec.embed, *spec.grid)
        for j in range(HEAD_ROUNDS):
            x = F.relu(getattr(self, f"syncbn_fc_{j}")(getattr(self, f"conv_{j}")(x)))
            if j == HEAD_ROUNDS - 1:
                # M3ViT applies the 1x1 conv before the last upsample; both are linear and the
                # bilinear weights sum to 1, so the order does not change the result, only the cost.
                x = getattr(self, f"conv_{HEAD_ROUNDS}")(x)
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=ALIGN_CORNERS)
        if tuple(x.shape[-2:]) != (spec.img_h, spec.img_w):
            # M3ViT resizes to the input size; a no-op when patch = 16 (four doublings)
            x = F.interpolate(x, size=(spec.img_h, spec.img_w), mode="bilinear", align_corners=ALIGN_CORNERS)
        return x


class M3ViT(nn.Module):
    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.spec = spec
        self.backbone = Backbone(spec)
        self.heads = nn.ModuleList(UpHead(spec, t.channels) for t in spec.tasks)

    def check_image(self, x):
        if x.dim() != 4 or tuple(x.shape[1:]) != self.spec.input_shape:
            raise EdgeMoeError(f"image has shape {tuple(x.shape)}; {self.spec.name} expects "
                               f"(B, {', '.join(map(str, self.spec.input_shape))})")

    def encode(self, x, task, taps=None, dense=None):
        """[B, 3, H, W] image in [0, 1] -> last block's output [B, tokens, d].

        ``dense``: masked dense MoE instead of per-expert dispatch; defaults to True while exporting
        to ONNX. ``task``: an int (eager) or an int64 tensor (export: the gate is picked in-graph).
        """
        if dense is None:
            dense = torch.onnx.is_in_onnx_export()
        if not torch.is_tensor(task):
            task = self.spec.task_index(task)
        self.check_image(x)
        return self.backbone(x, task, taps, dense)

    def head(self, tokens, task):
        """[B, tokens, d] -> task output [B, C, H, W]."""
        return self.heads[self.spec.task_index(task)](tokens)

    def forward(self, x, task):
        return self.head(self.encode(x, task), task)


# ---- seeded random weights -------------------------------------------------------------------

def _trunc_normal(shape, std: float, g: torch.Generator) -> torch.Tensor:
    """N(0, std) truncated at 2 std, by the inverse CDF: one pass (torch's rejection loop is slow
    on large tensors) and fully determined by ``g``."""
    lo = 0.5 * (1 + math.erf(-2 / math.sqrt(2)))  # Phi(-2)
    u = torch.rand(shape, generator=g) * (1 - 2 * lo) + lo
    return (torch.erfinv(2 * u - 1) * (math.sqrt(2) * std)).clamp_(-2 * std, 2 * std)


def _init_tensor(name: str, t: torch.Tensor, spec: ModelSpec, g: torch.Generator):
    """Realistic scales per role; every draw from ``g`` so a seed fixes the whole model."""
    def normal(std, mean=0.0):
        t.copy_(torch.randn(t.shape, generator=g) * std + mean)

    leaf = name.rsplit(".", 1)[-1]
    layer = name.rsplit(".", 2)[-2] if name.count(".") >= 1 else ""
    is_norm = layer.startswith("norm") or layer.startswith("syncbn")
    if leaf == "num_batches_tracked":
        return
    if leaf == "w_gate":
        normal(1.0 / math.sqrt(spec.embed))  # gate logits with a spread of about 1: no top-k ties
    elif leaf == "running_mean":
        normal(0.1)
    elif leaf == "running_var":
        t.copy_(torch.rand(t.shape, generator=g) + 0.5)
    elif is_norm and leaf == "weight":
        normal(0.1, 1.0)
    elif is_norm and leaf == "bias":
        normal(0.05)
    elif leaf == "bias":
        normal(0.02)
    else:  # linear / conv / expert weights, cls_token, pos_embed
        t.copy_(_trunc_normal(t.shape, 0.02, g))


def build_model(spec: ModelSpec, seed: int = 0) -> M3ViT:
    """An M3ViT for ``spec`` in eval mode, without gradients, with seeded random weights
    (deterministic per seed)."""
    model = M3ViT(spec)
    g = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        for name, t in model.state_dict(keep_vars=True).items():
            _init_tensor(name, t.data if isinstance(t, nn.Parameter) else t, spec, g)
    return model.eval().requires_grad_(False)  # a reference for inference: no autograd bookkeeping


# ---- numpy views for the torch-free layers ---------------------------------------------------

def params_numpy(model: M3ViT) -> dict:
    """Encoder weights as float32 numpy arrays under their state_dict keys (``backbone.*``)."""
    return {k: v.detach().cpu().numpy().astype(np.float32)
            for k, v in model.state_dict().items() if k.startswith("backbone.")}


def head_params_numpy(model: M3ViT, task) -> dict:
    """Weights of one task head for :func:`edgemoe.host.heads.run_head` (keys without ``heads.{t}.``)."""
    t = model.spec.task_index(task)
    prefix = f"heads.{t}."
    return {k[len(prefix):]: v.detach().cpu().numpy().astype(np.float32)
            for k, v in model.state_dict().items()
            if k.startswith(prefix) and not k.endswith("num_batches_tracked")}


def run_golden(model: M3ViT, image_np: np.ndarray, task) -> np.ndarray:
    """(3, H, W) float image -> encoder output (tokens, d) float32."""
    image_np = np.asarray(image_np)
    if tuple(image_np.shape) != model.spec.input_shape:
        raise EdgeMoeError(f"image has shape {tuple(image_np.shape)}; {model.spec.name} expects "
                           f"{model.spec.input_shape}")
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(image_np, dtype=np.float32))[None]
        return model.encode(x, task)[0].numpy().astype(np.float32)


# ---- a deterministic picture ------------------------------------------------------------------

def sample_image(spec: ModelSpec, seed: int = 0) -> np.ndarray:
    """A synthetic scene (sky, ground, a few shapes, mild noise), float32 (C, H, W) in [0, 1).

    It only has to look like a picture: smooth regions and edges give the encoder and the heads
    something structured to work on, unlike white noise.
    """
    rng = np.random.default_rng(seed)
    h, w = spec.img_h, spec.img_w
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    v, u = yy / max(h - 1, 1), xx / max(w - 1, 1)
    horizon = rng.uniform(0.4, 0.65) + 0.08 * np.sin(2 * np.pi * (u * rng.uniform(0.5, 1.5) + rng.random()))
    sky = np.stack([0.35 + 0.3 * v, 0.55 + 0.25 * v, 0.95 - 0.2 * v])
    ground_col = rng.uniform(0.2, 0.6, 3)
    ground = ground_col[:, None, None] * (0.7 + 0.5 * (v - horizon).clip(0)[None])
    img = np.where(v[None] < horizon[None], sky, ground)
    for _ in range(rng.integers(3, 6)):
        col = rng.uniform(0.05, 0.95, 3)[:, None, None]
        cy, cx = rng.uniform(0.2, 0.9) * h, rng.uniform(0.05, 0.95) * w
        r = rng.uniform(0.08, 0.25) * min(h, w)
        kind = rng.integers(3)
        if kind == 0:  # disc
            m = (yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2
        elif kind == 1:  # box
            m = (abs(yy - cy) < r * rng.uniform(0.5, 1)) & (abs(xx - cx) < r * rng.uniform(0.8, 2))
        else:  # triangle pointing up
            m = (yy < cy + r) & (yy > cy - r) & (abs(xx - cx) < (yy - cy + r) * 0.6)
        shade = 0.8 + 0.2 * (1 - (yy - cy) / (2 * r + 1e-9)).clip(0, 1)  # lit from above
        img = np.where(m[None], col * shade[None], img)
    img = img + rng.normal(0, 0.02, img.shape)
    return np.clip(img, 0.0, 255 / 256).astype(np.float32)


__all__ = ["M3ViT", "build_model", "params_numpy", "head_params_numpy", "run_golden", "sample_image",
           "ALIGN_CORNERS"]
