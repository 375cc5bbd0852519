"""Calibration on the user's images (issue 14): ``--calib DIR`` for golden --fixed, generate, csim and
estimate; the set is recorded in the manifest and every later step reads the project's types from it."""
from __future__ import annotations

import json

import numpy as np
import pytest

from edgemoe.cli import main
from edgemoe.errors import EdgeMoeError
from edgemoe.golden.calib_images import MAX_IMAGES, calibration_set, images_sha256, load_calibration_set, sample_set
from edgemoe.spec import get_preset

MICRO = get_preset("micro")
SHAPE = MICRO.input_shape            # (3, 32, 64)


def _png(path, rgb: np.ndarray) -> None:
    from PIL import Image
    Image.fromarray(np.asarray(rgb, np.uint8)).save(path)


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    """Folders: random .npy, random .png of another size, the default samples as .npy, all-bright .npy."""
    root = tmp_path_factory.mktemp("calib")
    rng = np.random.default_rng(3)
    for name in ("npy", "png", "samples", "bright"):
        (root / name).mkdir()
    for i in range(3):
        np.save(root / "npy" / f"im{i}.npy", rng.random(SHAPE).astype(np.float32))
        _png(root / "png" / f"im{i}.png", rng.integers(0, 256, (48, 100, 3)))
    for i, img in enumerate(sample_set(MICRO).images):
        np.save(root / "samples" / f"s{i}.npy", img)
    for i in range(2):
        np.save(root / "bright" / f"b{i}.npy", np.full(SHAPE, 1.0 - 0.02 * i, np.float32))
    rng2 = np.random.default_rng(0)
    np.save(root / "x.npy", rng2.random(SHAPE).astype(np.float32))
    return root


def test_npy_and_png_folders_give_the_same_shaped_set(sets):
    a, sha_a = load_calibration_set(sets / "npy", MICRO)
    b, sha_b = load_calibration_set(sets / "png", MICRO)   # 48x100 pictures resized to 32x64
    assert a.shape == b.shape == (3, *SHAPE)
    assert a.dtype == b.dtype == np.float32
    assert 0.0 <= b.min() and b.max() <= 1.0
    assert len(sha_a) == len(sha_b) == 64 and sha_a != sha_b


def test_pictures_are_rgb_scaled_and_resized(tmp_path):
    from PIL import Image
    d = tmp_path / "d"
    d.mkdir()
    pix = np.random.default_rng(1).integers(0, 256, (32, 64, 3)).astype(np.uint8)
    _png(d / "a.png", pix)                                            # the model's size: no resize
    Image.new("L", (200, 90), 51).save(d / "b.jpg")                   # grey jpg, another size
    Image.new("RGBA", (10, 7), (255, 0, 0, 128)).save(d / "c.PNG")    # RGBA, tiny, upper-case suffix
    imgs, _ = load_calibration_set(d, MICRO)
    assert imgs.shape == (3, *SHAPE)
    np.testing.assert_array_equal(imgs[0], pix.transpose(2, 0, 1) / np.float32(255))
    np.testing.assert_allclose(imgs[1], 51 / 255, atol=2 / 255)       # jpeg of a flat grey stays grey
    np.testing.assert_allclose(imgs[2][0], 1.0)                       # red channel, resized up
    np.testing.assert_allclose(imgs[2][1:], 0.0)


def test_hash_is_over_the_decoded_images(sets, tmp_path):
    """The same pixels as .png and as .npy hash alike; the samples saved as .npy hash like the default."""
    pix = np.random.default_rng(2).integers(0, 256, (32, 64, 3)).astype(np.uint8)
    (tmp_path / "p").mkdir()
    (tmp_path / "n").mkdir()
    _png(tmp_path / "p" / "a.png", pix)
    np.save(tmp_path / "n" / "other_name.npy", (pix.transpose(2, 0, 1) / np.float32(255)).astype(np.float32))
    assert load_calibration_set(tmp_path / "p", MICRO)[1] == load_calibration_set(tmp_path / "n", MICRO)[1]
    assert calibration_set(sets / "samples", MICRO).sha256 == sample_set(MICRO).sha256
    rec = calibration_set(None, MICRO).record()
    assert rec == {"source": "samples", "images": 2, "sha256": images_sha256(sample_set(MICRO).images)}


@pytest.mark.parametrize("make, phrase", [
    (lambda d: None, "folder not found"),
    (lambda d: d.mkdir(), "no images in the folder"),
    (lambda d: (d.mkdir(), np.save(d / "a.npy", np.full(SHAPE, 2.0, np.float32))), "accepted range is [0, 1]"),
    (lambda d: (d.mkdir(), np.save(d / "a.npy", np.zeros((3, 16, 16), np.float32))), "expected (3, 32, 64)"),
    (lambda d: (d.mkdir(), (d / "a.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")), "a.png: not a readable picture"),
    (lambda d: (d.mkdir(), (d / "notes.txt").write_text("x")), "notes.txt: not a calibration image"),
    (lambda d: (d.mkdir(), (d / "sub").mkdir()), "a subfolder"),
    (lambda d: (d.mkdir(), [np.save(d / f"{i:03d}.npy", np.zeros(SHAPE, np.float32)) for i in range(MAX_IMAGES + 1)]),
     f"at most {MAX_IMAGES}"),
])
def test_bad_sets_are_one_line_errors(tmp_path, make, phrase):
    d = tmp_path / "calib"
    make(d)
    with pytest.raises(EdgeMoeError) as e:
        load_calibration_set(d, MICRO)
    assert phrase in str(e.value) and "\n" not in str(e.value)


def test_hidden_files_are_skipped(tmp_path):
    (tmp_path / ".DS_Store").write_text("x")
    np.save(tmp_path / "a.npy", np.zeros(SHAPE, np.float32))
    assert load_calibration_set(tmp_path, MICRO)[0].shape == (1, *SHAPE)


def _types(calib):
    from edgemoe.golden.calibrate import precision_for
    from edgemoe.golden.model import build_model
    images = None if calib is None else calibration_set(calib, MICRO).images
    return precision_for("w8a8", MICRO, build_model(MICRO, seed=0), images=images).to_dict()


def _golden(ws, out, *extra, capsys):
    rc = main(["golden", "--preset", "micro", "--task", "0", "--input", str(ws / "x.npy"), "--output",
               str(ws / out), "--fixed", "--precision", "w8a8", *extra])
    assert rc == 0, capsys.readouterr().err
    return np.load(ws / out)


def test_golden_fixed_calib(sets, capsys):
    default = _golden(sets, "y_default.npy", capsys=capsys)
    same = _golden(sets, "y_samples.npy", "--calib", str(sets / "samples"), capsys=capsys)
    bright = _golden(sets, "y_bright.npy", "--calib", str(sets / "bright"), capsys=capsys)
    assert "calibrated on" in capsys.readouterr().out
    np.testing.assert_array_equal(same, default)
    assert not np.array_equal(bright, default)
    assert _types(sets / "samples") == _types(None)
    assert _types(sets / "bright") != _types(None)


def test_generate_records_the_set_and_csim_is_bit_exact(sets, tmp_path, capsys):
    from edgemoe.codegen.csim import run_csim
    from edgemoe.golden.precision import Precision
    prj = tmp_path / "prj"
    assert main(["generate", "--preset", "micro", "--board", "zcu104", "--precision", "w8a8",
                 "--calib", str(sets / "bright"), "-o", str(prj)]) == 0
    m = json.loads((prj / "data" / "manifest.json").read_text())
    cal = calibration_set(sets / "bright", MICRO)
    assert m["calib"] == {"source": str((sets / "bright").resolve()), "images": 2, "sha256": cal.sha256}
    assert m["precision"] == _types(sets / "bright") != _types(None)
    # csim reads the manifest's types (no recalibration: the calibration functions are never called)
    import edgemoe.golden.calibrate as calibrate

    def no_calibration(*a, **k):
        raise AssertionError("csim recalibrated")
    mp = pytest.MonkeyPatch()
    mp.setattr(calibrate, "precision_for", no_calibration)
    mp.setattr(calibrate, "calibrate_w8a8", no_calibration)
    try:
        res = run_csim(prj, task=0, images=1, quiet=True, calib=sets / "bright")
    finally:
        mp.undo()
    assert res["mismatches"] == 0 and res["calib"] == m["calib"]
    assert Precision.from_dict(m["precision"]).to_dict() == m["precision"]
    with pytest.raises(EdgeMoeError, match="was calibrated on .*bright.*regenerate"):
        run_csim(prj, task=0, quiet=True, calib=sets / "samples")
    # edgemoe sim --project reports the manifest's record (config, log line and JSON document)
    from edgemoe.sim.bench_config import resolve_config
    from edgemoe.sim.cli_sim import sim_document
    cfg = resolve_config(None, prj)
    assert cfg["calib"] == m["calib"]
    assert cal.sha256[:16] in cfg["calibrated_on"] and str((sets / "bright").resolve()) in cfg["calibrated_on"]
    assert sim_document([], cfg, 1, 0, {})["config"]["calib"] == m["calib"]


def test_generate_default_records_the_samples(tmp_path):
    from edgemoe.codegen.generate import generate
    generate(tmp_path / "p8", preset="micro", board="zcu104", precision="w8a8")
    generate(tmp_path / "p16", preset="micro", board="zcu104")
    m8 = json.loads((tmp_path / "p8" / "data" / "manifest.json").read_text())
    m16 = json.loads((tmp_path / "p16" / "data" / "manifest.json").read_text())
    assert m8["calib"] == sample_set(MICRO).record() and m8["precision"] == _types(None)
    assert m16["calib"] is None
    with pytest.raises(EdgeMoeError, match="w16a32 takes no calibration"):
        generate(tmp_path / "p16c", preset="micro", board="zcu104", calib=tmp_path)


def test_estimate_calib(sets, tmp_path, capsys):
    """Calibration moves binary points, never widths: the cycles stay; the record says what changed."""
    from edgemoe.board_facts import get_board
    from edgemoe.codegen.estimate import estimate
    from edgemoe.design import board_default
    from edgemoe.golden.precision import Precision, base_precision
    b = get_board("zcu104")
    d = board_default(b.name)
    e0 = estimate(MICRO, base_precision("w8a8"), d, b)
    e1 = estimate(MICRO, Precision.from_dict(_types(sets / "bright")), d, b)
    assert e0.cycles == e1.cycles and e0.resources["dsp"] == e1.resources["dsp"]
    j = tmp_path / "e.json"
    assert main(["estimate", "--preset", "micro", "--board", "zcu104", "--precision", "w8a8", "--calib",
                 str(sets / "png"), "--json", str(j)]) == 0
    out = capsys.readouterr().out
    assert "types calibrated on them with the seed-0 random model of preset micro" in out
    assert "against the uncalibrated types" in out
    rec = json.loads(j.read_text())["calib"]
    assert rec["images"] == 3 and isinstance(rec["affects_estimate"], bool)
    assert rec["sha256"] == calibration_set(sets / "png", MICRO).sha256
