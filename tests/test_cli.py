"""The command line: presets, golden (float, fixed, heads), and one-line errors for bad input."""
import subprocess
import sys

import numpy as np
import pytest

from edgemoe.golden.model import sample_image
from edgemoe.spec import PRESETS, get_preset


def run(*args, check=None):
    p = subprocess.run([sys.executable, "-m", "edgemoe.cli", *map(str, args)], capture_output=True,
                       text=True, timeout=600)
    if check is not None:
        assert p.returncode == check, p.stderr
    return p


def assert_one_line_error(p, *fragments):
    assert p.returncode != 0
    err = p.stderr.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    for f in fragments:
        assert f in err, err


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    path = tmp_path_factory.mktemp("in") / "x.npy"
    np.save(path, sample_image(get_preset("micro"), seed=3))
    return path


def test_presets_lists_every_preset_with_sizes():
    out = run("presets", check=0).stdout
    for name, spec in PRESETS.items():
        assert name in out
        assert str(spec.tokens) in out
    assert "0.78" in out  # m3vit-tiny-edge GMAC per frame


def test_help_on_each_subcommand():
    for cmd in ("presets", "golden", "demo", "export-onnx", "generate", "csim"):
        assert "usage" in run(cmd, "--help", check=0).stdout


def test_golden_float_fixed_and_heads(image, tmp_path):
    out_f, out_q = tmp_path / "f.npy", tmp_path / "q.npy"
    run("golden", "--preset", "micro", "--task", "semseg", "--input", image, "--output", out_f,
        "--heads", tmp_path / "heads", check=0)
    run("golden", "--preset", "micro", "--task", "0", "--fixed", "--input", image, "--output", out_q, check=0)
    f, q = np.load(out_f), np.load(out_q)
    assert f.shape == q.shape == (9, 32) and f.dtype == q.dtype == np.float32
    assert not np.array_equal(f, q)
    assert f.ravel() @ q.ravel() / np.linalg.norm(f) / np.linalg.norm(q) > 0.9999
    seg = np.load(tmp_path / "heads" / "semseg.npy")
    assert seg.shape == (8, 32, 64)
    assert (tmp_path / "heads" / "semseg.png").stat().st_size > 100


def test_golden_w8a8_fixed(image, tmp_path):
    out = tmp_path / "y.npy"
    run("golden", "--preset", "micro", "--task", "depth", "--fixed", "--precision", "w8a8",
        "--input", image, "--output", out, check=0)
    assert np.load(out).shape == (9, 32)


def test_unknown_preset_lists_known(image, tmp_path):
    p = run("golden", "--preset", "vit-huge", "--task", "0", "--input", image, "--output", tmp_path / "y.npy")
    assert_one_line_error(p, "unknown preset 'vit-huge'", "micro", "m3vit-tiny-edge", "m3vit-small")
    assert not (tmp_path / "y.npy").exists()


def test_wrong_image_shape_says_expected(tmp_path):
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((3, 32, 32), np.float32))
    p = run("golden", "--preset", "micro", "--task", "0", "--input", bad, "--output", tmp_path / "y.npy")
    assert_one_line_error(p, "(3, 32, 32)", "expected (3, 32, 64)")
    assert not (tmp_path / "y.npy").exists()


def test_missing_input_and_bad_task_and_precision(image, tmp_path):
    y = tmp_path / "y.npy"
    assert_one_line_error(run("golden", "--preset", "micro", "--task", "0", "--input", tmp_path / "no.npy",
                              "--output", y), "not found")
    assert_one_line_error(run("golden", "--preset", "micro", "--task", "7", "--input", image, "--output", y),
                          "unknown task", "semseg")
    assert_one_line_error(run("golden", "--preset", "micro", "--task", "0", "--precision", "w4a4", "--input",
                              image, "--output", y), "unknown precision", "w16a32")


def test_checkpoint_with_bad_keys_names_them(image, tmp_path):
    import torch
    from edgemoe.golden.model import build_model
    sd = build_model(get_preset("micro"), seed=1).state_dict()
    sd.pop("backbone.blocks.0.attn.qkv.bias")
    sd["backbone.blocks.0.attn.extra"] = torch.zeros(1)
    torch.save({"state_dict": sd}, tmp_path / "m.pth")
    p = run("golden", "--preset", "micro", "--checkpoint", tmp_path / "m.pth", "--task", "0", "--input", image,
            "--output", tmp_path / "y.npy")
    assert_one_line_error(p, "backbone.blocks.0.attn.qkv.bias")
    sd = build_model(get_preset("micro"), seed=1).state_dict()
    sd["backbone.pos_embed"] = torch.zeros(1, 5, 32)
    torch.save(sd, tmp_path / "s.pth")
    p = run("golden", "--preset", "micro", "--checkpoint", tmp_path / "s.pth", "--task", "0", "--input", image,
            "--output", tmp_path / "y.npy")
    assert_one_line_error(p, "backbone.pos_embed", "(1, 9, 32)", "(1, 5, 32)")


def test_onnx_round_trip_and_unsupported_operator(image, tmp_path):
    import onnx
    from onnx import helper
    from edgemoe.golden.model import build_model
    from edgemoe.golden.onnx_io import export_onnx
    path = export_onnx(build_model(get_preset("micro"), seed=0), tmp_path / "enc.onnx")
    run("export-onnx", "--preset", "micro", "-o", tmp_path / "cli.onnx", check=0)
    run("golden", "--onnx", tmp_path / "cli.onnx", "--task", "1", "--input", image, "--output", tmp_path / "c.npy", check=0)
    run("golden", "--onnx", path, "--task", "1", "--input", image, "--output", tmp_path / "o.npy", check=0)
    run("golden", "--preset", "micro", "--task", "1", "--input", image, "--output", tmp_path / "p.npy", check=0)
    assert np.abs(np.load(tmp_path / "o.npy") - np.load(tmp_path / "p.npy")).max() < 1e-5
    assert np.abs(np.load(tmp_path / "c.npy") - np.load(tmp_path / "p.npy")).max() < 1e-5
    m = onnx.load(path)
    m.graph.node.append(helper.make_node("Celu", ["tokens"], ["celu_out"], name="my_celu"))
    onnx.save(m, tmp_path / "bad.onnx")
    p = run("golden", "--onnx", tmp_path / "bad.onnx", "--task", "0", "--input", image, "--output", tmp_path / "z.npy")
    assert_one_line_error(p, "Celu", "my_celu")


def test_atomic_output_onto_a_folder_or_under_a_file_is_one_line(tmp_path):
    """Every command's output file goes through atomic_path: a folder in its place, or a file where its
    folder should be, is a one-line error naming the path, and nothing is left behind."""
    from edgemoe.errors import EdgeMoeError
    from edgemoe.io import atomic_path
    (tmp_path / "d").mkdir()
    (tmp_path / "f").write_text("user's file")
    for target, words in ((tmp_path / "d", "is a folder"), (tmp_path / "f" / "x.json", "cannot write")):
        with pytest.raises(EdgeMoeError, match=words):
            with atomic_path(target) as tmp:
                tmp.write_text("{}")
    assert (tmp_path / "f").read_text() == "user's file" and sorted(p.name for p in tmp_path.iterdir()) == ["d", "f"]
    assert not list((tmp_path / "d").iterdir())
