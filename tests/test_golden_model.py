"""The float golden M3ViT: names and shapes, an independent numpy re-computation, MoE semantics,
task switching, determinism, the sample picture and the error messages."""
import math

import numpy as np
import pytest
import torch

from edgemoe.errors import EdgeMoeError
from edgemoe.golden.model import (M3ViT, build_model, head_params_numpy, params_numpy, run_golden,
                                  sample_image)
from edgemoe.spec import get_preset

MICRO = get_preset("micro")




@pytest.fixture(scope="module")
def micro():
    return build_model(MICRO, seed=0)


@pytest.fixture(scope="module")
def image():
    return sample_image(MICRO, seed=0)


def encode_taps(model, image, task, dense=False):
    taps = {}
    with torch.no_grad():
        out = model.encode(torch.from_numpy(image)[None], task, taps=taps, dense=dense)
    return out[0].numpy(), {k: v[0].numpy() for k, v in taps.items()}


def expected_backbone_shapes(spec):
    d, t, p = spec.embed, spec.tokens, spec.patch
    e, eh = spec.num_experts, spec.expert_hidden
    s = {"backbone.patch_embed.proj.weight": (d, 3, p, p), "backbone.patch_embed.proj.bias": (d,),
         "backbone.cls_token": (1, 1, d), "backbone.pos_embed": (1, t, d)}
    for i in range(spec.depth):
        b = f"backbone.blocks.{i}."
        s.update({b + "norm1.weight": (d,), b + "norm1.bias": (d,), b + "norm2.weight": (d,),
                  b + "norm2.bias": (d,), b + "attn.qkv.weight": (3 * d, d), b + "attn.qkv.bias": (3 * d,),
                  b + "attn.proj.weight": (d, d), b + "attn.proj.bias": (d,)})
        if i in spec.moe_blocks:
            s.update({b + "mlp.experts.htoh4.weight": (e, eh, d), b + "mlp.experts.htoh4.bias": (e, eh),
                      b + "mlp.experts.h4toh.weight": (e, d, eh), b + "mlp.experts.h4toh.bias": (e, d)})
            s.update({b + f"mlp.gate.{k}.w_gate": (d, e) for k in range(spec.num_tasks)})
        else:
            s.update({b + "mlp.fc1.weight": (spec.mlp_hidden, d), b + "mlp.fc1.bias": (spec.mlp_hidden,),
                      b + "mlp.fc2.weight": (d, spec.mlp_hidden), b + "mlp.fc2.bias": (d,)})
    return s


@pytest.mark.parametrize("name", ["micro", "m3vit-tiny-edge"])
def test_backbone_keys_and_shapes(name):
    spec = get_preset(name)
    model = M3ViT(spec)  # unitialised: names and shapes only
    got = {k: tuple(v.shape) for k, v in model.state_dict().items() if k.startswith("backbone.")}
    assert got == expected_backbone_shapes(spec)


def test_head_keys(micro):
    keys = {k for k in micro.state_dict() if k.startswith("heads.")}
    assert {k.split(".")[1] for k in keys} == {"0", "1"}
    c = MICRO.decoder_channels
    sd = micro.state_dict()
    assert tuple(sd["heads.0.conv_0.weight"].shape) == (c, MICRO.embed, 3, 3)
    assert tuple(sd["heads.0.conv_3.weight"].shape) == (c, c, 3, 3)
    assert tuple(sd["heads.0.conv_4.weight"].shape) == (MICRO.tasks[0].channels, c, 1, 1)
    assert tuple(sd["heads.1.conv_4.weight"].shape) == (MICRO.tasks[1].channels, c, 1, 1)
    assert "heads.1.syncbn_fc_3.running_var" in keys and "heads.0.norm.weight" in keys
    assert set(head_params_numpy(micro, 1)) == {k[len("heads.1."):] for k in keys
                                                if k.startswith("heads.1.") and "num_batches" not in k}


def test_m3vit_small_parameter_count():
    spec = get_preset("m3vit-small")
    model = M3ViT(spec)
    d, n_moe = spec.embed, len(spec.moe_blocks)
    per_block = 4 * d + (3 * d * d + 3 * d) + (d * d + d)
    dense = 2 * d * spec.mlp_hidden + spec.mlp_hidden + d
    moe = (spec.num_experts * (2 * d * spec.expert_hidden + spec.expert_hidden + d)
           + spec.num_tasks * d * spec.num_experts)
    expect = (d * 3 * 256 + d + d + spec.tokens * d + spec.depth * per_block
              + (spec.depth - n_moe) * dense + n_moe * moe)
    got = sum(v.numel() for k, v in model.state_dict().items() if k.startswith("backbone."))
    assert got == expect
    assert model.backbone.pos_embed.shape == (1, 1201, 384)


# ---- an independent float64 numpy encoder ------------------------------------------------------

def _ln(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps) * w + b


def _gelu(x):
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def _softmax(x):
    z = np.exp(x - x.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


def numpy_encoder(spec, params, image, task):
    P = {k: v.astype(np.float64) for k, v in params.items()}
    p, d, nh = spec.patch, spec.embed, spec.heads
    gh, gw = spec.grid
    w = P["backbone.patch_embed.proj.weight"]
    x = np.zeros((spec.tokens, d))
    x[0] = P["backbone.cls_token"][0, 0]
    for r in range(gh):                       # patches one by one, row-major
        for c in range(gw):
            patch = image[:, r * p:(r + 1) * p, c * p:(c + 1) * p].astype(np.float64)
            x[1 + r * gw + c] = np.tensordot(w, patch, axes=3) + P["backbone.patch_embed.proj.bias"]
    x = x + P["backbone.pos_embed"][0]
    for i in range(spec.depth):
        k = lambda n, i=i: P[f"backbone.blocks.{i}.{n}"]  # noqa: E731
        h = _ln(x, k("norm1.weight"), k("norm1.bias"), spec.ln_eps)
        qkv = h @ k("attn.qkv.weight").T + k("attn.qkv.bias")
        heads = []
        for j in range(nh):
            sl = slice(j * spec.head_dim, (j + 1) * spec.head_dim)
            q, kk, v = qkv[:, sl], qkv[:, d:][:, sl], qkv[:, 2 * d:][:, sl]
            heads.append(_softmax(q @ kk.T / math.sqrt(spec.head_dim)) @ v)
        x = x + np.concatenate(heads, 1) @ k("attn.proj.weight").T + k("attn.proj.bias")
        h = _ln(x, k("norm2.weight"), k("norm2.bias"), spec.ln_eps)
        if i in spec.moe_blocks:
            probs = _softmax(h @ k(f"mlp.gate.{task}.w_gate"))
            y = np.zeros_like(h)
            for t in range(spec.tokens):
                for e in np.argsort(-probs[t])[:spec.top_k]:
                    f = _gelu(k("mlp.experts.htoh4.weight")[e] @ h[t] + k("mlp.experts.htoh4.bias")[e])
                    fc2 = k("mlp.experts.h4toh.weight")[e] @ f + k("mlp.experts.h4toh.bias")[e]
                    y[t] += probs[t, e] * fc2
        else:
            f = _gelu(h @ k("mlp.fc1.weight").T + k("mlp.fc1.bias"))
            y = f @ k("mlp.fc2.weight").T + k("mlp.fc2.bias")
        x = x + y
    return x


@pytest.mark.parametrize("task", [0, 1])
def test_encode_matches_independent_numpy(micro, image, task):
    ref = numpy_encoder(MICRO, params_numpy(micro), image, task)
    got = run_golden(micro, image, task)
    assert got.shape == MICRO.output_shape and got.dtype == np.float32
    np.testing.assert_allclose(got, ref, atol=2e-5, rtol=0)


def test_moe_block_by_hand_from_taps(micro, image):
    _, taps = encode_taps(micro, image, 1)
    params = params_numpy(micro)
    for b in MICRO.moe_blocks:
        p = f"blocks.{b}."
        k = lambda n, b=b: params[f"backbone.blocks.{b}.{n}"].astype(np.float64)  # noqa: E731
        x = taps[p + "ln2"].astype(np.float64)
        logits = x @ k("mlp.gate.1.w_gate")
        np.testing.assert_allclose(taps[p + "gate_logits"], logits, atol=1e-5)
        probs = _softmax(logits)
        np.testing.assert_allclose(taps[p + "gate_probs"], probs, atol=1e-6)
        top = np.argsort(-probs, axis=-1)[:, :MICRO.top_k]
        np.testing.assert_array_equal(np.sort(taps[p + "topk_idx"], -1), np.sort(top, -1))
        experts = np.stack([_gelu(x @ k("mlp.experts.htoh4.weight")[e].T + k("mlp.experts.htoh4.bias")[e])
                            @ k("mlp.experts.h4toh.weight")[e].T + k("mlp.experts.h4toh.bias")[e]
                            for e in range(MICRO.num_experts)], 1)          # [T, E, d]
        w = np.take_along_axis(probs, top, -1)                            # full-softmax weights
        assert np.all(w.sum(-1) < 0.999)                                  # so they do not sum to 1
        y = (np.take_along_axis(experts, top[..., None], 1) * w[..., None]).sum(1)
        np.testing.assert_allclose(taps[p + "mlp_out"], y, atol=1e-5)
        renorm = y / w.sum(-1, keepdims=True)
        assert np.abs(taps[p + "mlp_out"] - renorm).max() > 1e-3          # not the renormalised form
        np.testing.assert_array_equal(taps[p + "expert_load"],
                                      np.bincount(top.ravel(), minlength=MICRO.num_experts))


def test_taps_names_and_shapes(micro, image):
    _, taps = encode_taps(micro, image, 0)
    T, d, h, hd = MICRO.tokens, MICRO.embed, MICRO.heads, MICRO.head_dim
    assert taps["patch_embed"].shape == (T, d)
    for i in range(MICRO.depth):
        p = f"blocks.{i}."
        for n in ("ln1", "attn_out", "res1", "ln2", "mlp_out", "out"):
            assert taps[p + n].shape == (T, d), n
        for n in "qkv":
            assert taps[p + n].shape == (h, T, hd)
        assert taps[p + "attn_probs"].shape == (h, T, T)
        np.testing.assert_allclose(taps[p + "attn_probs"].sum(-1), 1.0, atol=1e-5)
        # q is not yet scaled: the scaled product is separate
        np.testing.assert_allclose(taps[p + "scores"], taps[p + "q"] @ taps[p + "k"].transpose(0, 2, 1)
                                   * MICRO.scale, atol=1e-6)
        if i in MICRO.moe_blocks:
            assert taps[p + "gate_logits"].shape == (T, MICRO.num_experts)
            assert taps[p + "gate_probs"].shape == (T, MICRO.num_experts)
            assert taps[p + "topk_idx"].shape == (T, MICRO.top_k)
            assert p + "fc1" not in taps
        else:
            assert taps[p + "fc1"].shape == (T, MICRO.mlp_hidden)
            assert taps[p + "fc1"].min() >= -0.17  # after GELU (its minimum is about -0.17)
    np.testing.assert_array_equal(taps[f"blocks.{MICRO.depth - 1}.out"], run_golden(micro, image, 0))


def test_task_switching_changes_only_moe(micro, image):
    y0, t0 = encode_taps(micro, image, 0)
    y1, t1 = encode_taps(micro, image, 1)
    first = min(MICRO.moe_blocks)
    for name in t0:
        blk = int(name.split(".")[1]) if name.startswith("blocks.") else -1
        if blk < first or (blk == first and not name.split(".", 2)[2].startswith(("gate", "topk", "mlp_out",
                                                                                  "out", "expert"))):
            np.testing.assert_array_equal(t0[name], t1[name], err_msg=name)
    assert np.abs(t0[f"blocks.{first}.gate_logits"] - t1[f"blocks.{first}.gate_logits"]).max() > 0.1
    assert np.abs(y0 - y1).max() > 1e-3


def test_dense_moe_equals_dispatch(micro, image):
    for task in (0, 1):
        a, _ = encode_taps(micro, image, task, dense=False)
        b, _ = encode_taps(micro, image, task, dense=True)
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_batch_equals_single_images(micro):
    imgs = np.stack([sample_image(MICRO, seed=s) for s in (1, 2)])
    with torch.no_grad():
        both = micro.encode(torch.from_numpy(imgs), 0).numpy()
    for j in range(2):
        np.testing.assert_allclose(both[j], run_golden(micro, imgs[j], 0), atol=1e-6)


def test_build_model_is_deterministic_by_seed():
    a, b, c = (params_numpy(build_model(MICRO, seed=s)) for s in (0, 0, 1))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert all(not np.array_equal(a[k], c[k]) for k in a)
    ha, hb = (build_model(MICRO, seed=7).state_dict() for _ in range(2))
    assert all(torch.equal(ha[k], hb[k]) for k in ha if k.startswith("heads."))


def test_initial_scales(micro, image):
    p = params_numpy(micro)
    assert 0.015 < p["backbone.blocks.0.attn.qkv.weight"].std() < 0.025
    assert np.abs(p["backbone.blocks.0.attn.qkv.weight"]).max() <= 0.04 + 1e-7   # truncated at 2 std
    assert 0.85 < p["backbone.blocks.0.norm1.weight"].mean() < 1.15
    assert np.all(p["backbone.blocks.0.mlp.fc1.bias"] != 0)
    _, taps = encode_taps(micro, image, 0)
    assert 0.5 < taps[f"blocks.{MICRO.moe_blocks[0]}.gate_logits"].std() < 2.0
    bn = micro.heads[0].syncbn_fc_0
    assert bn.running_var.min() >= 0.5 and bn.running_var.max() <= 1.5 and not micro.training


def test_forward_gives_full_resolution_task_outputs(micro, image):
    with torch.no_grad():
        for t, ts in enumerate(MICRO.tasks):
            y = micro(torch.from_numpy(image)[None], t)
            assert tuple(y.shape) == (1, ts.channels, MICRO.img_h, MICRO.img_w)
            assert torch.isfinite(y).all() and y.std() > 0


def test_tiny_edge_forward():
    spec = get_preset("m3vit-tiny-edge")
    model = build_model(spec, seed=0)
    img = sample_image(spec)
    with torch.no_grad():
        taps = {}
        tokens = model.encode(torch.from_numpy(img)[None], 1, taps=taps)
        out = model.head(tokens, 0)
    assert tuple(tokens.shape) == (1, 129, 192) and torch.isfinite(tokens).all()
    assert tuple(out.shape) == (1, 40, 128, 256)
    assert taps["blocks.11.topk_idx"].shape == (1, 129, 2)


def test_sample_image():
    a, b, c = sample_image(MICRO, 0), sample_image(MICRO, 0), sample_image(MICRO, 1)
    assert a.shape == (3, 32, 64) and a.dtype == np.float32
    assert a.min() >= 0.0 and a.max() < 1.0
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.std() > 0.05
    # smooth: neighbouring pixels are close most of the time (a picture, not noise)
    assert np.median(np.abs(np.diff(a, axis=2))) < 0.05


def test_bad_image_shape_message(micro):
    with pytest.raises(EdgeMoeError) as e:
        run_golden(micro, np.zeros((3, 32, 32), np.float32), 0)
    assert str(e.value) == "image has shape (3, 32, 32); micro expects (3, 32, 64)"
    with pytest.raises(EdgeMoeError, match=r"image has shape \(1, 3, 64, 32\); micro expects"):
        micro.encode(torch.zeros(1, 3, 64, 32), 0)


def test_bad_task_message(micro, image):
    with pytest.raises(EdgeMoeError, match="unknown task 5 for micro"):
        run_golden(micro, image, 5)
    np.testing.assert_array_equal(run_golden(micro, image, "depth"), run_golden(micro, image, 1))


def test_gelu_is_exact_erf(micro):
    """Large pre-activations, where the tanh approximation differs by ~1e-4, in dense and MoE MLPs."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(1, MICRO.tokens, MICRO.embed, generator=g) * 60
    dense = micro.backbone.blocks[0].mlp
    taps = {}
    with torch.no_grad():
        dense(x, 0, taps, "")
        pre = (x @ dense.fc1.weight.T + dense.fc1.bias).double().numpy()[0]
    assert np.abs(pre).max() > 3
    np.testing.assert_allclose(taps["fc1"][0].double().numpy(), _gelu(pre), atol=2e-5)
    moe = micro.backbone.blocks[MICRO.moe_blocks[0]].mlp
    ex = moe.experts
    for dense_form in (False, True):
        taps = {}
        with torch.no_grad():
            y = moe(x, 0, taps, "", dense_form)[0].double().numpy()
        xd, probs = x[0].double().numpy(), taps["gate_probs"][0].double().numpy()
        ref = np.zeros_like(xd)
        for t, idx in enumerate(taps["topk_idx"][0].numpy()):
            for e in idx:
                h = _gelu(ex.htoh4.weight[e].double().numpy() @ xd[t] + ex.htoh4.bias[e].double().numpy())
                fc2 = ex.h4toh.weight[e].double().numpy() @ h + ex.h4toh.bias[e].double().numpy()
                ref[t] += probs[t, e] * fc2
        np.testing.assert_allclose(y, ref, atol=2e-5)
