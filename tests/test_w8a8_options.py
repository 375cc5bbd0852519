"""The switchable options of w8a8 (issue 14): ``+smooth`` (LayerNorm outliers moved into the next layer's
weights, float-exact), ``+wide-attn`` (the attention operands at 16 bits) and ``+per-channel`` (a weight
scale per output channel, applied by the engine's epilogue); the error budget
(``--min-cosine``) that keeps the attention wider or names the stage that misses it; all bit-exact in csim."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from edgemoe.cli import main
from edgemoe.errors import EdgeMoeError
from edgemoe.golden.budget import stages_below, within_budget
from edgemoe.golden.calib_images import sample_set
from edgemoe.golden.apfixed import FixedType
from edgemoe.golden.calibrate import precision_for
from edgemoe.golden.channel_scales import CHANNEL_SHIFT_MAX, SHIFT_SUFFIX, channel_shifts, quantize_rows
from edgemoe.golden.fixed_model import FixedM3ViT
from edgemoe.golden.model import params_numpy, run_golden, sample_image
from edgemoe.golden.outlier_checkpoint import outlier_model
from edgemoe.golden.precision import Precision, base_precision
from edgemoe.golden.smoothing import consumers, smooth_params
from edgemoe.spec import get_preset, precision_name, split_precision

MICRO = get_preset("micro")


@pytest.fixture(scope="module")
def outlier():
    model = outlier_model(MICRO, seed=0)
    return model, params_numpy(model)


def test_names_and_options():
    assert split_precision("w8a8") == ("w8a8", ())
    assert split_precision("w8a8+wide-attn+smooth") == ("w8a8", ("smooth", "wide-attn"))
    assert precision_name("w8a8", ("wide-attn", "smooth")) == "w8a8+smooth+wide-attn"
    for bad, why in (("w8a8+fast", "unknown option 'fast'"), ("w16a32+smooth", "w16a32 takes no options"),
                     ("w8a8+smooth+smooth", "repeated option"), ("w4a4", "unknown precision")):
        with pytest.raises(EdgeMoeError, match=why):
            base_precision(bad)


def test_wide_attn_types():
    plain, wide = base_precision("w8a8"), base_precision("w8a8+wide-attn")
    assert plain.types["qkv"].W == 8 and plain.types["prob"].W == 8
    assert wide.types["qkv"].W == 16 and wide.types["prob"].W == 16 and wide.types["prob"].I == 0
    assert wide.types["ln_out"] == plain.types["ln_out"] and wide.types["w"] == plain.types["w"]   # the engine stays 8-bit
    assert wide.options == ("wide-attn",) and wide.base == "w8a8" and "16 bits" in wide.description


def test_w8a8_fits_parameters_beyond_the_reference_types(outlier):
    """A trained gamma of 20 moves w8a8's LayerNorm-parameter type up a bit (nothing clamped, no --saturate);
    a model whose values fit keeps w16a32's parameter types (w8a8 on the random presets as before)."""
    model, params = outlier
    base = base_precision("w8a8")
    prec = precision_for("w8a8", MICRO, model, params)
    assert prec.types["ln_param"].W == 16 and prec.types["ln_param"].I == base.types["ln_param"].I + 1
    assert not FixedM3ViT(MICRO, prec, params).param_range
    from edgemoe.golden.model import build_model
    rnd = build_model(MICRO, seed=0)
    plain = precision_for("w8a8", MICRO, rnd, params_numpy(rnd))
    assert all(plain.types[r] == base.types[r] for r in ("bias", "qkv_b", "b", "ln_param"))


def test_smoothing_is_float_exact(outlier):
    """Scaling a LayerNorm channel by 2^-k and its consumers' input column by 2^k leaves the float model's output."""
    model, params = outlier
    rng = np.random.default_rng(3)
    smooth = {f"backbone.blocks.{i}.{n}": [int(k) for k in rng.integers(0, 4, MICRO.embed)]
              for i in range(MICRO.depth) for n in ("norm1", "norm2")}
    sp = smooth_params(MICRO, smooth, params)
    assert sp is not params and np.any(sp["backbone.blocks.1.norm1.weight"] != params["backbone.blocks.1.norm1.weight"])
    for i in (0, 1):   # a dense and a MoE block: qkv, fc1 / the experts and every gate are scaled
        names = [n for n, _ in consumers(MICRO, i, "norm2")]
        assert any("experts" in n for n in names) == MICRO.is_moe(i) and all(np.any(sp[n] != params[n]) for n in names)
    twin = outlier_model(MICRO, seed=0)
    twin.load_state_dict({k: torch.from_numpy(np.asarray(v, np.float32)) if k in sp else v
                          for k, v in {**twin.state_dict(), **sp}.items()})
    image = sample_image(MICRO, seed=4)
    for task in range(MICRO.num_tasks):
        a, b = run_golden(model, image, task), run_golden(twin, image, task)
        assert np.allclose(a, b, rtol=1e-5, atol=1e-6), np.abs(a - b).max()


def test_smooth_precision_round_trips_and_moves_channels(outlier):
    model, params = outlier
    prec = precision_for("w8a8+smooth", MICRO, model, params)
    assert prec.smooth and all(len(v) == MICRO.embed and min(v) >= 0 for v in prec.smooth.values())
    back = Precision.from_dict(prec.to_dict())
    assert back.smooth == prec.smooth and back.name == "w8a8+smooth"
    # the fixed model quantises the smoothed parameters: a moved gamma is stored divided by 2^k
    key, ks = next(iter(prec.smooth.items()))
    c = int(np.argmax(ks))
    q = FixedM3ViT(MICRO, prec, params).q[key + ".weight"]
    assert q.to_float()[c] == pytest.approx(params[key + ".weight"][c] / 2 ** ks[c], abs=prec.t("ln_param").lsb)
    assert not precision_for("w8a8", MICRO, model, params).smooth


def test_channel_shift_rule():
    t = FixedType(8, 1, True, "AP_RND", "AP_SAT")      # the tensor's type: [-1, 1)
    w = np.array([[0.9, -0.2], [0.1, 0.05], [1e-9, 0.0], [-0.12, 0.01]])
    sh = channel_shifts(w, t)
    # 0.1 and 0.12 fit [-1/8, 1/8); a zero row stops at pow2_type's smallest range (2^-5 at 8 bits)
    assert sh.tolist() == [0, 3, 5, 3]
    raw, out = quantize_rows(w, t, sh)
    assert not out.any() and raw[1, 0] == round(0.1 * 2 ** (7 + 3)) and raw[0, 0] == round(0.9 * 2 ** 7)
    assert channel_shifts(w, FixedType(8, 5, True)).tolist() == [4, 7, CHANNEL_SHIFT_MAX, 7]   # clipped at 3 bits


@pytest.mark.parametrize("precision", ["w8a8+wide-attn", "w8a8+smooth+wide-attn", "w8a8+per-channel",
                                       "w8a8+smooth+wide-attn+per-channel"])
def test_generate_csim_bit_exact(tmp_path, outlier, precision):
    from edgemoe.codegen.csim import run_csim
    from edgemoe.codegen.generate import generate
    model, _ = outlier
    p = generate(tmp_path / "p", model=model, board="zcu104", precision=precision)
    assert p.prec.name == precision and bool(p.prec.smooth) == ("smooth" in precision)
    config = (p.path / "src" / "edgemoe_config.h").read_text()
    assert re.search(r"typedef ap_fixed<(\d+),[^;]*> qkv_t;", config).group(1) == ("16" if "wide-attn" in precision else "8")
    assert (f"#define ENG_PER_CHANNEL {int('per-channel' in precision)}") in config
    if "per-channel" in precision:
        # the shifts travel in weights.bin and come back with the project's parameters, some of them non-zero
        back = p.golden_params()
        q = p.fixed_model().q
        sh = {k: v for k, v in back.items() if k.endswith(SHIFT_SUFFIX)}
        assert len(sh) == 4 * MICRO.depth and sum(int(np.count_nonzero(v)) for v in sh.values()) > 0
        assert all(np.array_equal(v, q[k]) for k, v in sh.items())
    p.compile()
    for task in range(MICRO.num_tasks):
        res = run_csim(p.path, task=task, taps="all", quiet=True)
        assert res["mismatches"] == 0 and not [r for r in res["taps"] if r["mismatches"]]
        assert res["cosine_vs_float"] > 0.999


def test_wide_attn_mends_the_weakest_attention_stage(outlier):
    model, params = outlier
    images = sample_set(MICRO).images
    plain = stages_below(model, MICRO, precision_for("w8a8", MICRO, model, params), params, images, 1.0)
    wide = stages_below(model, MICRO, precision_for("w8a8+wide-attn", MICRO, model, params), params, images, 1.0)
    after = {r["stage"]: r["cosine"] for r in wide}
    probs = [r for r in plain if r["stage"].endswith(".attn_probs")]
    w = min(probs, key=lambda r: r["cosine"])
    assert after.get(w["stage"], 1.0) > w["cosine"] + 0.01       # the weakest probabilities, much better
    assert min(after.get(r["stage"], 1.0) for r in probs) > w["cosine"]


def test_budget_widens_the_attention_then_names_the_stage(outlier):
    model, params = outlier
    images = sample_set(MICRO).images
    plain = precision_for("w8a8", MICRO, model, params)
    low = stages_below(model, MICRO, plain, params, images, 1.0)
    attn = min(r["cosine"] for r in low if r["stage"].rsplit(".", 1)[-1] in ("scores", "attn_probs", "q", "k", "v"))
    others = min([r["cosine"] for r in low if r["stage"].rsplit(".", 1)[-1] not in
                  ("q", "k", "v", "scores", "attn_probs", "attn_out")] + [1.0])
    assert attn < others, "the micro outlier model's weakest w8a8 stage is in the attention"
    said = []
    prec = within_budget("w8a8", MICRO, model, params, images, (attn + others) / 2 if others < 1 else attn + 1e-4,
                         log=said.append)
    assert prec.name == "w8a8+wide-attn" and len(said) == 1 and "keeping the attention at 16 bits" in said[0]
    budget = r"w8a8\+wide-attn misses its error budget: stage blocks\.\d+\.\w+ .*\(--min-cosine 0\.999999\)"
    with pytest.raises(EdgeMoeError, match=budget):
        within_budget("w8a8", MICRO, model, params, images, 0.999999, log=said.append)


def test_cli_precision_options(tmp_path, capsys):
    image = tmp_path / "x.npy"
    np.save(image, sample_image(MICRO, seed=1))
    y = tmp_path / "y.npy"
    args = ["golden", "--preset", "micro", "--task", "0", "--input", str(image), "--output", str(y)]
    assert main(args + ["--fixed", "--precision", "w8a8+per-channel+wide-attn+smooth"]) == 0
    out = capsys.readouterr().out
    assert "fixed-point w8a8+smooth+wide-attn+per-channel" in out and y.exists()
    assert "options: smooth on (" in out and "wide-attn on (qkv ap_fixed<16," in out and "per-channel on (" in out
    y.unlink()
    for extra, why in ((["--fixed", "--precision", "w8a8+turbo"], "unknown option 'turbo'"),
                       (["--precision", "w8a8", "--min-cosine", "0.9"], "give --fixed too"),
                       (["--fixed", "--precision", "w8a8", "--min-cosine", "1.5"], "--min-cosine 1.5: outside")):
        assert main(args + extra) == 2
        err = capsys.readouterr().err.strip()
        assert why in err and len(err.splitlines()) == 1 and not y.exists()
    assert main(["estimate", "--preset", "micro", "--board", "zcu104", "--precision", "w8a8+wide-attn"]) == 0
    assert "w8a8+wide-attn" in capsys.readouterr().out


def test_report_shows_the_options_and_the_calibration(tmp_path, outlier, capsys):
    from edgemoe.codegen.generate import generate
    model, _ = outlier
    generate(tmp_path / "p", model=model, board="zcu104", precision="w8a8+wide-attn+per-channel")
    assert main(["report", str(tmp_path / "p"), "--output", str(tmp_path / "r"), "--no-csim"]) == 0
    md = (tmp_path / "r" / "report.md").read_text()
    assert "| precision | w8a8+wide-attn+per-channel |" in md
    assert "| precision options | smooth off; wide-attn on (qkv ap_fixed<16," in md and "per-channel on (" in md
    assert "| calibration | samples (2 images, sha256 " in md
