"""The numpy task head of the host runtime against the torch head."""
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from edgemoe.errors import EdgeMoeError
from edgemoe.golden.model import build_model, head_params_numpy, run_golden, sample_image
from edgemoe.host.heads import conv3x3, resize_bilinear, run_head
from edgemoe.spec import get_preset




def torch_head(model, tokens, task):
    with torch.no_grad():
        return model.head(torch.from_numpy(tokens)[None], task)[0].numpy()


def rel_err(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.mark.parametrize("task", [0, 1])
def test_micro_matches_torch(task):
    spec = get_preset("micro")
    model = build_model(spec, seed=2)
    tokens = run_golden(model, sample_image(spec, seed=1), task)
    ref = torch_head(model, tokens, task)
    got = run_head(tokens, head_params_numpy(model, task), spec, task)
    assert got.shape == (spec.tasks[task].channels, spec.img_h, spec.img_w) == ref.shape
    assert got.dtype == np.float32
    assert rel_err(got, ref) < 1e-4


def test_tiny_edge_matches_torch():
    spec = get_preset("m3vit-tiny-edge")
    model = build_model(spec, seed=0)
    tokens = np.random.default_rng(0).normal(0, 1, spec.output_shape).astype(np.float32)
    ref = torch_head(model, tokens, 0)
    got = run_head(tokens, head_params_numpy(model, 0), spec, 0)
    assert got.shape == (40, 128, 256)
    assert rel_err(got, ref) < 1e-4


def test_conv3x3_matches_torch():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 6, 9)).astype(np.float32)
    w = rng.normal(size=(7, 5, 3, 3)).astype(np.float32)
    b = rng.normal(size=7).astype(np.float32)
    ref = F.conv2d(torch.from_numpy(x)[None], torch.from_numpy(w), torch.from_numpy(b), padding=1)[0].numpy()
    np.testing.assert_allclose(conv3x3(x, w, b), ref, atol=1e-5)


@pytest.mark.parametrize("size", [(8, 10), (5, 7), (13, 4), (4, 5)])
def test_resize_matches_torch(size):
    x = np.random.default_rng(2).normal(size=(3, 4, 5)).astype(np.float32)
    ref = F.interpolate(torch.from_numpy(x)[None], size=size, mode="bilinear", align_corners=False)[0].numpy()
    np.testing.assert_allclose(resize_bilinear(x, *size), ref, atol=1e-6)


def test_conv1x1_commutes_with_upsample():
    """Why the head may apply the 1x1 conv before the last upsample (as M3ViT does)."""
    g = torch.Generator().manual_seed(0)
    x, conv = torch.randn(1, 6, 5, 7, generator=g), torch.nn.Conv2d(6, 3, 1)
    up = lambda t: F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)  # noqa: E731
    with torch.no_grad():
        torch.testing.assert_close(up(conv(x)), conv(up(x)), atol=1e-5, rtol=1e-5)


def test_errors():
    spec = get_preset("micro")
    model = build_model(spec)
    params = head_params_numpy(model, 1)
    tokens = np.zeros(spec.output_shape, np.float32)
    with pytest.raises(EdgeMoeError, match=r"encoder output has shape \(8, 32\); micro expects \(9, 32\)"):
        run_head(tokens[1:], params, spec, 1)
    del params["conv_2.weight"]
    with pytest.raises(EdgeMoeError, match=r"head parameter conv_2\.weight missing for task 1 \(depth\)"):
        run_head(tokens, params, spec, 1)
    with pytest.raises(EdgeMoeError, match=r"gives 8 channels; the spec says 1"):
        run_head(tokens, head_params_numpy(model, 0), spec, 1)


def test_host_heads_do_not_import_torch():
    code = "import sys, edgemoe.host.heads; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
