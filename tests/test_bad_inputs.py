"""Bad input across every command, table-driven: each row is a command line, the exit code it must
end with, and a phrase its one-line message must hold. Every row also checks that nothing ended in a
traceback and that no file in the workspace changed or appeared (a refused run leaves nothing behind,
not even a temporary file); the good rows beside them may only add the outputs they name.

Plus a property test: random combinations of valid options never end in a traceback.
"""
from __future__ import annotations

import hashlib
import json
import os
import random

import numpy as np
import pytest

from edgemoe.cli import main

PRESET = ("--preset", "micro")
SHAPE = (3, 32, 64)   # micro's input


def _snapshot(root) -> dict:
    """sha256 of every file under ``root`` (the project's own compile cache, prj/build, aside)."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        if os.path.relpath(dirpath, root) == "prj":
            dirs[:] = [d for d in dirs if d != "build"]
        for f in files:
            p = os.path.join(dirpath, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = hashlib.sha256(fh.read()).hexdigest()
        for d in dirs:
            out[os.path.relpath(os.path.join(dirpath, d), root) + "/"] = "dir"
    return out


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    """The workspace every row runs in: good and bad images, checkpoints, an ONNX file, a project,
    a user's folder and a plain file."""
    import torch

    from edgemoe.codegen.generate import generate
    from edgemoe.golden.checkpoint import save_checkpoint
    from edgemoe.golden.model import build_model
    from edgemoe.golden.onnx_io import export_onnx
    from edgemoe.spec import get_preset
    root = tmp_path_factory.mktemp("ws")
    rng = np.random.default_rng(0)
    good = rng.random(SHAPE).astype(np.float32)
    np.save(root / "x.npy", good)
    np.save(root / "x255.npy", good * 255)
    np.save(root / "neg.npy", -good)
    bad = good.copy()
    bad[0, 0, 0] = np.nan
    np.save(root / "nan.npy", bad)
    np.save(root / "shape.npy", good[:, :16])
    np.save(root / "int.npy", (good * 255).astype(np.uint8))
    np.save(root / "pickled.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (root / "text.npy").write_text("not an array\n")
    model = build_model(get_preset("micro"), seed=0)
    save_checkpoint(model, root / "ckpt", ranks=2)
    save_checkpoint(model, root / "ckpt_rank", ranks=2)
    (root / "ckpt_rank" / "1.pth").unlink()
    with torch.no_grad():
        model.state_dict()["backbone.blocks.2.norm2.weight"][:2] = 20.0   # a trained ViT's outlier channels
    save_checkpoint(model, root / "ckpt_outlier", ranks=2)
    with torch.no_grad():
        model.state_dict()["backbone.blocks.2.norm2.weight"][:2] = 1.0
        model.state_dict()["backbone.blocks.0.norm1.weight"][:3] = float("inf")
    save_checkpoint(model, root / "ckpt_inf", ranks=1)
    export_onnx(model, root / "inf.onnx")
    export_onnx(build_model(get_preset("micro"), seed=0), root / "m.onnx")
    generate(root / "prj", preset="micro", board="zcu104")
    import shutil
    shutil.copytree(root / "prj", root / "prj_edit")
    w = bytearray((root / "prj_edit" / "data" / "weights.bin").read_bytes())
    w[100] ^= 0x01
    (root / "prj_edit" / "data" / "weights.bin").write_bytes(bytes(w))
    (root / "user").mkdir()
    (root / "user" / "notes.txt").write_text("mine")
    (root / "afile").write_text("mine")
    (root / "empty.json").write_text("{}")
    (root / "partial.json").write_text(json.dumps({"name": "mine", "engine_in": 8}))
    (root / "based.json").write_text(json.dumps({"base": "zcu104", "engine_in": 8}))
    (root / "foo.json").write_text(json.dumps({"foo": 1}))
    (root / "list.json").write_text("[]")
    for d in ("calib_empty", "calib_hi", "calib_png"):      # --calib folders: empty, a value > 1, a corrupt .png
        (root / d).mkdir()
    np.save(root / "calib_hi" / "a.npy", np.minimum(good * 1.5, 1.2).astype(np.float32))
    (root / "calib_png" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    (root / "calib_ok").mkdir()
    np.save(root / "calib_ok" / "a.npy", good)
    return root


RO = "/proc/self/edgemoe-ro/out"   # a place no process can create files in (procfs)

G = ("golden", *PRESET, "--task", "0", "--input")
GEN = ("generate", *PRESET, "--board", "zcu104")
EST = ("estimate", *PRESET, "--board", "zcu104")

# (command line, exit code, phrase of the message (stderr; stdout for exit 0), outputs a good row may add)
ROWS = [
    # outputs: a user's folder or file is never replaced, not even with --force
    (GEN + ("-o", "user", "--force"), 2, "not made by edgemoe", ()),
    (GEN + ("-o", "afile", "--force"), 2, "not a folder", ()),
    (GEN + ("-o", ".", "--force"), 2, "current folder", ()),
    (GEN + ("-o", "..", "--force"), 2, "current folder", ()),
    (GEN + ("-o", "prj"), 2, "use --force", ()),
    (GEN + ("-o", RO), 2, "cannot write", ()),
    (("export-onnx", *PRESET, "-o", RO + ".onnx"), 2, "cannot write", ()),
    (G + ("x.npy", "--output", RO + ".npy"), 2, "cannot write", ()),
    (G + ("x.npy", "--output", "x.npy"), 2, "also an input", ()),
    (G + ("x.npy", "--output", "y.npy", "--heads", "afile"), 2, "not a folder", ()),
    (("estimate", "prj", "--json", "user"), 2, "is a folder", ()),
    (("estimate", "prj", "--json", "new/sub/e.json"), 0, "micro", ("new/", "new/sub/", "new/sub/e.json")),
    (("hls-check", "prj", "--no-probe", "--json", RO + ".json"), 2, "cannot write", ()),
    # images: shape, dtype, finite, range [0, 1]
    (G + ("x255.npy", "--output", "y.npy"), 2, "accepted range is [0, 1]", ()),
    (G + ("neg.npy", "--output", "y.npy"), 2, "accepted range is [0, 1]", ()),
    (G + ("nan.npy", "--output", "y.npy"), 2, "NaN", ()),
    (G + ("shape.npy", "--output", "y.npy"), 2, "expected (3, 32, 64)", ()),
    (G + ("int.npy", "--output", "y.npy"), 2, "dtype is uint8", ()),
    (G + ("text.npy", "--output", "y.npy"), 2, "not a .npy file", ()),
    (G + ("pickled.npy", "--output", "y.npy"), 2, "pickled", ()),
    (G + ("missing.npy", "--output", "y.npy"), 2, "not found", ()),
    (G + ("x.npy", "--output", "y.npy"), 0, "wrote y.npy", ("y.npy",)),
    (("csim", "prj", "--input", "x255.npy"), 2, "accepted range is [0, 1]", ()),
    (("csim", "prj", "--input", "nan.npy"), 2, "NaN", ()),
    # models: finite weights, whole rank folders, one source
    (G + ("x.npy", "--output", "y2.npy", "--checkpoint", "ckpt_inf"), 2, "norm1.weight holds 3 NaN or infinite", ()),
    (GEN + ("--checkpoint", "ckpt_inf", "-o", "p_inf"), 2, "NaN or infinite", ()),
    (("export-onnx", *PRESET, "--checkpoint", "ckpt_inf", "-o", "inf.onnx"), 2, "NaN or infinite", ()),
    (G + ("x.npy", "--output", "y2.npy", "--checkpoint", "ckpt_rank"), 2, "1.pth missing", ()),
    (("golden", "--task", "0", "--input", "x.npy", "--output", "y2.npy", "--onnx", "inf.onnx"), 2,
     "norm1.weight holds 3 NaN or infinite", ()),
    (G + ("x.npy", "--output", "y2.npy", "--onnx", "m.onnx"), 2, "not both", ()),
    # fixed-point range: a parameter that does not fit its type is named, or saturated on request
    (G + ("x.npy", "--output", "y4.npy", "--fixed", "--checkpoint", "ckpt_outlier"), 2,
     "backbone.blocks.2.norm2.weight does not fit", ()),
    (GEN + ("--checkpoint", "ckpt_outlier", "-o", "p_out"), 2, "backbone.blocks.2.norm2.weight does not fit", ()),
    (G + ("x.npy", "--output", "y4.npy", "--fixed", "--checkpoint", "ckpt_outlier", "--saturate"), 0,
     "2 parameter values in 1 tensor saturate", ("y4.npy",)),
    (("golden", "--task", "0", "--input", "x.npy", "--output", "y3.npy", "--onnx", "m.onnx"), 0, "micro",
     ("y3.npy",)),
    (("generate", "--onnx", "m.onnx", *PRESET, "--board", "zcu104", "-o", "p_onnx"), 2, "not both", ()),
    # numbers: one range per option, the same in every command
    (GEN + ("--clock", "nan", "-o", "p_nan"), 2, "accepted range 50..450", ()),
    (GEN + ("--clock", "1000", "-o", "p_1000"), 2, "accepted range 50..450", ()),
    (EST + ("--clock", "1000"), 2, "accepted range 50..450", ()),
    (EST + ("--clock", "inf"), 2, "accepted range 50..450", ()),
    (("explore", *PRESET, "--board", "zcu104", "--clock", "10"), 2, "accepted range 50..450", ()),
    (GEN + ("--batch", "0", "-o", "p_b"), 2, "accepted range 1..8", ()),
    (EST + ("--batch", "99"), 2, "accepted range 1..8", ()),
    (G + ("x.npy", "--output", "y.npy", "--seed", "-1"), 2, "accepted range 0..4294967295", ()),
    (("csim", "prj", "--images", "0"), 2, "accepted range 1..64", ()),
    (("sim", "--vectors", "0"), 2, "accepted range 1..", ()),
    (("explore", *PRESET, "--board", "zcu104", "--top", "0"), 2, "accepted range 1..", ()),
    (("emulate", "--package", "nope", "--port", "99999"), 2, "accepted range 0..65535", ()),
    # design files: strict, or an explicit base
    (EST + ("--design", "empty.json"), 2, "missing field(s)", ()),
    (EST + ("--design", "partial.json"), 2, "missing field(s) attn_lanes", ()),
    (EST + ("--design", "foo.json"), 2, "unknown field(s) foo", ()),
    (EST + ("--design", "list.json"), 2, "expected an object", ()),
    (EST + ("--design", "based.json"), 0, "base zcu104: engine_in=8", ()),
    # reports trust no JSON they are given; their folders follow the output rules
    (("report", "prj", "--no-csim", "--sim-json", "foo.json"), 2, "not the output of `edgemoe sim --json`", ()),
    (("report", "prj", "--no-csim", "--sim-json", "list.json"), 2, "not the output of `edgemoe sim --json`", ()),
    (("report", "prj", "--no-csim", "--board-json", "foo.json"), 2, "not the output of `edgemoe-host run", ()),
    (("report", "prj", "--no-csim", "--output", "user", "--force"), 2, "not made by edgemoe", ()),
    (("report", "prj", "--no-csim", "--output", "afile"), 2, "not a folder", ()),
    (("demo", *PRESET, "--out", "afile"), 2, "not a folder", ()),
    (("demo", *PRESET, "--out", "user"), 2, "not made by edgemoe", ()),
    (("demo", *PRESET, "--out", "prj"), 2, "generate", ()),
    # data integrity: a project edited after generate is named before it is packaged or simulated
    (("package", "prj_edit", "-o", "pkg_e"), 2, "data/weights.bin differs from the project's manifest", ()),
    (("csim", "prj_edit"), 2, "data/weights.bin differs from the project's manifest", ()),
    (("package", "prj", "-o", "user", "--force"), 2, "not made by edgemoe", ()),
    (("package", "prj", "-o", "afile", "--force"), 2, "not a folder", ()),
    (("package", "prj", "-o", "."), 2, "current folder", ()),
    (("package", "prj", "-o", "pkg"), 0, "packaged pkg", ("pkg.tar.gz", "pkg/")),
    # hints that name the real option
    (EST + ("--csynth", "none.xml"), 2, "--until hls", ()),
    # --calib DIR: the calibration images, each named when bad
    (G + ("x.npy", "--output", "y5.npy", "--fixed", "--precision", "w8a8", "--calib", "nodir"), 2,
     "--calib nodir: folder not found", ()),
    (G + ("x.npy", "--output", "y5.npy", "--fixed", "--precision", "w8a8", "--calib", "calib_empty"), 2,
     "no images in the folder", ()),
    (G + ("x.npy", "--output", "y5.npy", "--fixed", "--precision", "w8a8", "--calib", "calib_hi"), 2,
     "calib_hi/a.npy: image values span", ()),
    (G + ("x.npy", "--output", "y5.npy", "--fixed", "--precision", "w8a8", "--calib", "calib_png"), 2,
     "calib_png/a.png: not a readable picture", ()),
    (G + ("x.npy", "--output", "y5.npy", "--precision", "w8a8", "--calib", "calib_hi"), 2, "give --fixed too", ()),
    (GEN + ("--precision", "w8a8", "--calib", "calib_png", "-o", "p_cal"), 2, "calib_png/a.png: not a readable", ()),
    (GEN + ("--precision", "w8a8", "--calib", "nodir", "-o", "p_cal"), 2, "folder not found", ()),
    (GEN + ("--calib", "calib_hi", "-o", "p_cal"), 2, "w16a32 takes no calibration", ()),
    (("csim", "prj", "--calib", "calib_empty"), 2, "precision w16a32 takes no calibration", ()),
    (EST + ("--precision", "w8a8", "--calib", "calib_hi"), 2, "accepted range is [0, 1]", ()),
    (G + ("x.npy", "--output", "y5.npy", "--fixed", "--precision", "w8a8", "--calib", "calib_ok"), 0,
     "types calibrated on", ("y5.npy",)),
    (GEN + ("--precision", "w8a8", "--calib", "calib_ok", "-o", "p_calok"), 0, "generated p_calok", ("p_calok/",)),
]


def _run(argv, capsys):
    """Run one command line in-process: (exit code, stdout, stderr); any exception is a traceback."""
    try:
        rc = main(list(argv))
    except SystemExit as e:   # argparse's own usage errors
        rc = e.code
    except BaseException as e:  # noqa: BLE001 - what the user would see as a traceback
        pytest.fail(f"{' '.join(argv)}: traceback ({type(e).__name__}: {e})")
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.mark.parametrize("argv, code, phrase, adds", ROWS, ids=[" ".join(r[0])[:70] for r in ROWS])
def test_bad_input_is_one_line_and_changes_nothing(ws, monkeypatch, capsys, argv, code, phrase, adds):
    monkeypatch.chdir(ws)
    before = _snapshot(ws)
    rc, out, err = _run(argv, capsys)
    assert rc == code, (out, err)
    if code:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("edgemoe: error: "), err
        assert phrase in lines[0], err
        assert "Traceback" not in err
    else:
        assert phrase in out + err
    after = _snapshot(ws)
    changed = sorted(k for k in before if after.get(k) != before[k])
    assert not changed, f"changed or removed: {changed}"
    new = sorted(set(after) - set(before))
    assert all(any(k == a or (a.endswith("/") and k.startswith(a)) for a in adds) for k in new), new
    assert all(a in new for a in adds), (adds, new)


HOST_ROWS = [
    (("run", "pkg_none", "--timeout", "nan"), "--timeout nan: outside the accepted range"),
    (("run", "pkg_none", "--images", "0"), "--images 0: outside the accepted range 1.."),
    (("run", "pkg_none"), "pkg_none"),
]


@pytest.mark.parametrize("argv, phrase", HOST_ROWS, ids=[" ".join(r[0]) for r in HOST_ROWS])
def test_host_bad_input_is_one_line(ws, monkeypatch, capsys, argv, phrase):
    from edgemoe.host.cli import main as host_main
    monkeypatch.chdir(ws)
    before = _snapshot(ws)
    assert host_main(list(argv)) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("edgemoe-host: error: ") and phrase in err[0], err
    assert _snapshot(ws) == before


def test_rows_cover_every_command():
    """The table reaches every command that reads user input or writes an output."""
    from edgemoe.cli import build_parser
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    covered = {r[0][0] for r in ROWS}
    untested = set(sub.choices) - covered - {"presets", "synth-estimate", "build", "vitis-check"}
    assert not untested, f"commands without a bad-input row: {sorted(untested)}"


# ---- random valid options never end in a traceback -------------------------------------------------
def test_random_valid_options_never_traceback(ws, monkeypatch, capsys):
    monkeypatch.chdir(ws)
    rnd = random.Random(12)
    presets = ["micro", "m3vit-tiny-edge"]
    boards = ["zcu104", "zcu102", "kv260"]
    designs = [None, "edge-moe", "small", "zcu104", "zcu102", "kv260", "based.json"]
    seen = {0: 0, 2: 0}
    for _ in range(40):
        argv = ["estimate", "--preset", rnd.choice(presets), "--board", rnd.choice(boards),
                "--precision", rnd.choice(["w16a32", "w8a8"])]
        d = rnd.choice(designs)
        if d:
            argv += ["--design", d]
        if rnd.random() < 0.5:
            argv += ["--clock", str(rnd.choice([50, 100, 200, 250, 300, 333.3, 450]))]
        if rnd.random() < 0.5:
            argv += ["--batch", str(rnd.randint(1, 8))]
        rc, out, err = _run(argv, capsys)
        assert rc in seen, (argv, err)
        seen[rc] += 1
        if rc:   # a point that does not tile or fit: one line that says so
            assert len(err.strip().splitlines()) == 1 and "edgemoe: error: " in err, (argv, err)
        else:
            assert "latency" in out, argv
    assert seen[0] >= 10, seen


def test_random_valid_generate_options_never_traceback(ws, monkeypatch, capsys):
    """generate with random valid options: a project with edgemoe's marker, or one line saying why not."""
    monkeypatch.chdir(ws)
    rnd = random.Random(5)
    made = 0
    for k in range(5):
        out = f"rnd{k}"
        argv = ["generate", "--preset", "micro", "--board", rnd.choice(["zcu104", "zcu102", "kv260"]),
                "--precision", rnd.choice(["w16a32", "w8a8"]), "--design",
                rnd.choice(["edge-moe", "small", "zcu104", "kv260", "based.json"]),
                "--clock", str(rnd.choice([100, 200, 300])), "--batch", str(rnd.randint(1, 3)), "-o", out]
        rc, o, err = _run(argv, capsys)
        assert rc in (0, 2), (argv, err)
        if rc:
            assert len(err.strip().splitlines()) == 1 and not os.path.exists(out), (argv, err)
        else:
            made += 1
            assert os.path.isfile(os.path.join(out, ".edgemoe")) and "generated" in o, argv
    assert made >= 3


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_output_modes_follow_the_umask(tmp_path, umask):
    """A project and a JSON output are as readable as the umask says (not mkstemp's 0600 / mkdtemp's 0700)."""
    from edgemoe.codegen.generate import generate
    from edgemoe.io import atomic_path
    old = os.umask(umask)
    try:
        generate(tmp_path / "p", preset="micro", board="zcu104")
        with atomic_path(tmp_path / "e.json") as tmp:
            tmp.write_text("{}")
    finally:
        os.umask(old)
    modes = {}
    for dirpath, dirs, files in os.walk(tmp_path):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            modes[os.path.relpath(p, tmp_path)] = os.stat(p).st_mode & 0o777
    modes["p"] = os.stat(tmp_path / "p").st_mode & 0o777
    for rel, mode in modes.items():
        full = tmp_path / rel
        want = (0o777 if full.is_dir() or mode & 0o100 else 0o666) & ~umask
        assert mode == want, f"{rel}: {mode:o}, umask {umask:o} wants {want:o}"
    assert modes["e.json"] == 0o666 & ~umask and modes["p/data/weights.bin"] == 0o666 & ~umask
