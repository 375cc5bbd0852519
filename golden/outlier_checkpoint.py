"""Seeded M3ViT weights with the outliers of trained vision transformers (issue 14).

Seeded random weights (:func:`edgemoe.golden.model.build_model`) are easy to quantise: every tensor is
small and evenly spread. Trained ViTs are not, and the precisions must be measured on weights like
theirs too. :func:`outlier_model` starts from the seeded random model and adds, deterministically:

* **LayerNorm outliers**: in every ``norm1`` / ``norm2`` of the encoder a few channels get a gamma in
  [8, 20] and a few others a beta of magnitude in [5, 15] (random sign); the values are spread evenly
  over those ranges across the model, so both ends occur.
* **position embeddings** with a smooth 2-D structure (amplitudes up to 0.3) and, in a few
  "massive" channels, an offset of 7-9.5 of one sign: |pos_embed| reaches about 10.
* **massive activations**: in those channels the residual stream reaches |x| of 30-40 while most
  values stay below 1: the pos-embed offset, a patch-embedding bias of 8-12 and attention
  projection biases in the first half of the blocks add up, on the calibration image, to a target
  drawn in ``massive`` (default [32, 38]) for the channel's largest |x| at the last block.
* **peaked attention**: the Q and K rows of every block's ``attn.qkv`` are scaled (same factor for
  both) so that the block's largest attention score on the calibration image is a target drawn in
  ``scores`` (default [7, 18]).

The targets are reached on the calibration image (``sample_image(spec, seed=0)``, task 0) by a few
rounds of measuring and correcting (the factors and biases are rounded to coarse steps so that the
result does not depend on the last bits of a float sum). The model keeps M3ViT's key names and
layout: :func:`outlier_state_dict` is a state_dict that ``load_checkpoint`` reads, and
:func:`save_outlier_checkpoint` writes it as a rank folder. The task heads keep their random weights.

The ranges are those of the issue (trained M3ViT-tiny: gammas up to about 15-20, betas up to about 13-15,
position embeddings up to about 10, a few residual channels at 30-40). Note that gammas above 16 do not
fit the default LayerNorm-parameter type ap_fixed<16,5>: the fixed model needs ``saturate_params``
(``--saturate``) for them, and shows what the clamping costs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgemoe.spec import ModelSpec, block_key


@dataclass(frozen=True)
class OutlierProfile:
    """The outliers to build (defaults: the issue's ranges)."""
    gamma: tuple = (8.0, 20.0)          # LayerNorm gamma of the outlier channels
    beta: tuple = (5.0, 15.0)           # |LayerNorm beta| of the outlier channels
    pos_offset: tuple = (7.0, 9.5)      # |pos_embed| offset of the massive channels (plus a 0.5 wave)
    patch_bias: tuple = (8.0, 12.0)     # |patch-embedding bias| of the massive channels
    massive: tuple = (32.0, 38.0)       # largest |x| of a massive channel at the last block
    scores: tuple = (7.0, 18.0)         # largest attention score of a block
    rounds: int = 4                     # measure-and-correct rounds


DEFAULT_PROFILE = OutlierProfile()
CALIB_TASK = 0


@dataclass(frozen=True)
class OutlierPlan:
    """Where the outliers go: chosen from the seed alone (before any calibration)."""
    massive: tuple        # residual channels with massive activations
    signs: tuple          # their signs (+1 / -1)
    targets: tuple        # their largest |x| at the last block
    gamma: dict           # LayerNorm weight key -> {channel: gamma}
    beta: dict            # LayerNorm bias key -> {channel: beta}
    score_targets: tuple  # per block: the largest attention score


def _norm_keys(spec: ModelSpec) -> list:
    return [block_key(i, f"{n}.{leaf}") for i in range(spec.depth) for n in ("norm1", "norm2")
            for leaf in ("weight",)]


def outlier_plan(spec: ModelSpec, seed: int = 0, profile: OutlierProfile = DEFAULT_PROFILE) -> OutlierPlan:
    """The channels and target values of the outliers of ``spec`` for ``seed`` (deterministic)."""
    rng = np.random.default_rng([int(seed), 14])
    d = spec.embed
    n_massive = max(2, d // 64)            # micro 2, m3vit-tiny-edge 3, m3vit-small 6
    n_gamma = max(1, d // 48)              # per LayerNorm
    n_beta = max(1, d // 64)
    perm = rng.permutation(d)
    massive = tuple(int(c) for c in sorted(perm[:n_massive]))
    others = perm[n_massive:]
    signs = tuple(int(s) for s in rng.choice([-1, 1], n_massive))
    lo, hi = profile.massive
    targets = tuple(float(t) for t in np.round(rng.uniform(lo, hi, n_massive), 2))
    norms = _norm_keys(spec)
    # gamma / beta values spread evenly over their ranges across the model, in a seeded order
    gammas = rng.permutation(np.linspace(*profile.gamma, n_gamma * len(norms)))
    betas = rng.permutation(np.linspace(*profile.beta, n_beta * len(norms))) * rng.choice([-1, 1], n_beta * len(norms))
    gamma, beta = {}, {}
    for j, key in enumerate(norms):
        chans = rng.choice(others, n_gamma + n_beta, replace=False)
        gamma[key] = {int(c): float(round(g, 3)) for c, g in zip(chans[:n_gamma], gammas[j * n_gamma:(j + 1) * n_gamma])}
        beta[key[:-len("weight")] + "bias"] = {int(c): float(round(b, 3))
                                               for c, b in zip(chans[n_gamma:], betas[j * n_beta:(j + 1) * n_beta])}
    score_targets = tuple(float(t) for t in np.round(rng.uniform(*profile.scores, spec.depth), 2))
    return OutlierPlan(massive, signs, targets, gamma, beta, score_targets)


def _round_log2(x: float, steps: int = 64) -> float:
    """``x`` > 0 rounded to a power of 2 ** (1 / steps) (about 1 %): robust to float noise."""
    return 2.0 ** (round(math.log2(x) * steps) / steps)


def _round_to(x, step: float = 1 / 64):
    return np.round(np.asarray(x, np.float64) / step) * step


def outlier_model(spec: ModelSpec, seed: int = 0, profile: OutlierProfile = DEFAULT_PROFILE):
    """The seeded random :class:`~edgemoe.golden.model.M3ViT` of ``spec`` with trained-ViT-like
    outliers (see the module's text); deterministic for ``(spec, seed, profile)``."""
    import torch

    from .model import build_model, sample_image
    model = build_model(spec, seed=seed)
    plan = outlier_plan(spec, seed, profile)
    rng = np.random.default_rng([int(seed), 14, 1])
    sd = model.state_dict()
    d, (gh, gw) = spec.embed, spec.grid
    m = list(plan.massive)
    sign = np.array(plan.signs, np.float64)
    with torch.no_grad():
        for key, chans in {**plan.gamma, **plan.beta}.items():
            for c, v in chans.items():
                sd[key][c] = v
        # position embeddings: a smooth wave per channel over the patch grid (CLS: the grid's mean)
        rows, cols = np.mgrid[0:gh, 0:gw]
        fr, fc = rng.uniform(0, 1.5, d) / max(gh, 1), rng.uniform(0, 1.5, d) / max(gw, 1)
        phase, amp = rng.uniform(0, 2 * np.pi, d), rng.uniform(0.02, 0.3, d)
        amp[m] = 0.5
        wave = amp[None] * np.sin(2 * np.pi * (rows.reshape(-1, 1) * fr + cols.reshape(-1, 1) * fc) + phase)
        pos = np.concatenate([wave.mean(0, keepdims=True), wave], 0)
        pos[:, m] += sign * _round_to(rng.uniform(*profile.pos_offset, len(m)))
        pos += sd["backbone.pos_embed"][0].double().numpy()
        sd["backbone.pos_embed"][0] = torch.from_numpy(_round_to(pos, 2.0 ** -12))
        bias = sign * _round_to(rng.uniform(*profile.patch_bias, len(m)))
        sd["backbone.patch_embed.proj.bias"][m] = torch.from_numpy(bias).float()
        # the massive channels grow over the first half of the blocks, through the attention projection's bias
        grow = list(range(max(1, spec.depth // 2)))
        proj_b = [sd[block_key(i, "attn.proj.bias")] for i in grow]
        qkv_w = [sd[block_key(i, "attn.qkv.weight")] for i in range(spec.depth)]
        qkv_b = [sd.get(block_key(i, "attn.qkv.bias")) for i in range(spec.depth)]
        image = torch.from_numpy(sample_image(spec, seed=0))[None]
        target = np.array(plan.targets)
        for _ in range(profile.rounds):
            taps = {}
            model.encode(image, CALIB_TASK, taps=taps)
            # massive channels: the largest |x| at the last block on target, the correction shared out
            last = taps[f"blocks.{spec.depth - 1}.out"][0].double().numpy()[:, m]
            now = np.abs(last).max(0)
            step = _round_to(sign * (target - now) / len(grow))
            for b in proj_b:
                b[m] += torch.from_numpy(step).float()
            # attention: the Q and K rows of each block scaled by sqrt(target / largest score)
            for i in range(spec.depth):
                top = float(taps[f"blocks.{i}.scores"].abs().max())
                a = _round_log2(math.sqrt(plan.score_targets[i] / max(top, 1e-6)))
                if a != 1.0:
                    qkv_w[i][:2 * d] *= a
                    if qkv_b[i] is not None:
                        qkv_b[i][:2 * d] *= a
    return model


def outlier_state_dict(spec: ModelSpec, seed: int = 0, profile: OutlierProfile = DEFAULT_PROFILE) -> dict:
    """M3ViT-format state_dict (``backbone.*``, ``heads.*``) of :func:`outlier_model`."""
    return {k: v.clone() for k, v in outlier_model(spec, seed, profile).state_dict().items()}


def save_outlier_checkpoint(spec: ModelSpec, folder, seed: int = 0, ranks: int = 1,
                            profile: OutlierProfile = DEFAULT_PROFILE) -> Path:
    """Write :func:`outlier_model` as an M3ViT rank folder (``folder/{rank}.pth``); returns ``folder``."""
    from .checkpoint import save_checkpoint
    return save_checkpoint(outlier_model(spec, seed, profile), Path(folder), ranks=ranks)


__all__ = ["OutlierProfile", "OutlierPlan", "DEFAULT_PROFILE", "outlier_plan", "outlier_model", "outlier_state_dict",
           "save_outlier_checkpoint"]
