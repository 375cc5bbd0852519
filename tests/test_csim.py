"""C simulation of generated projects: every tap of the micro model, both tasks, both precisions,
bit for bit against the fixed-point golden; stop-at-tap runs; the Python API; the CLI; the C
testbench; random small specs (hypothesis)."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgemoe.cli import main
from edgemoe.codegen.aptypes import compile_cpp
from edgemoe.codegen.csim import run_csim
from edgemoe.codegen.generate import TOP, generate
from edgemoe.golden.model import build_model, sample_image
from edgemoe.spec import TaskSpec, get_preset


@pytest.fixture(scope="module", params=["w16a32", "w8a8"])
def project(request, tmp_path_factory):
    p = generate(tmp_path_factory.mktemp("csim") / request.param, preset="micro", board="zcu104",
                 precision=request.param)
    p.compile()
    return p


@pytest.mark.parametrize("task", [0, 1])
def test_every_tap_bit_exact(project, task):
    res = run_csim(project.path, task=task, taps="all", quiet=True)
    bad = [r for r in res["taps"] if r["mismatches"]]
    assert not bad, bad[:3]
    assert res["mismatches"] == 0 and res["taps_compared"] == len(project.manifest["taps"]) + 1
    assert res["cosine_vs_float"] > (0.999 if project.prec.name == "w16a32" else 0.95)


def test_probability_scales_follow_the_precision(project):
    """w8a8 calibrates the attention probability range per block; w16a32 has none to calibrate."""
    calibrated = [k for k in project.prec.overrides if k.endswith(".attn.prob")]
    assert bool(calibrated) == (project.prec.name == "w8a8")
    text = (project.path / "src" / "edgemoe_config.h").read_text()
    assert "D_PROB[DEPTH]" in text


def test_stop_at_chosen_taps(project):
    image = project.input_image()
    _, golden = project.golden_fixed(image, 1, with_taps=True)
    for t in project.manifest["taps"][::7] + [project.manifest["taps"][-1]]:
        got = project.tap(image, 1, t["id"])
        assert np.array_equal(got, golden[t["name"]]), t["name"]


def test_predict_batch_and_task_switch(project):
    spec = project.spec
    imgs = np.stack([sample_image(spec, seed=s) for s in (3, 4)])
    for task in (1, 0, 1):
        y = project.predict(imgs, task=task)
        assert y.shape == (2, spec.tokens, spec.embed) and y.dtype == np.float32
        for i in range(2):
            g, _ = project.golden_fixed(imgs[i], task)
            assert np.array_equal(project.layout.act_t.quantize(y[i]), g)
    assert project.predict(imgs[0], task=0).shape == (spec.tokens, spec.embed)


def test_cli_csim_json_input_output(project, tmp_path, capsys):
    x = sample_image(project.spec, seed=11)
    np.save(tmp_path / "x.npy", x)
    rc = main(["csim", str(project.path), "--task", "depth", "--input", str(tmp_path / "x.npy"), "--output",
               str(tmp_path / "y.npy"), "--taps", "all", "--json", str(tmp_path / "r.json")])
    assert rc == 0
    out = capsys.readouterr().out
    assert "bit-exact" in out and "blocks.3.out" in out
    r = json.loads((tmp_path / "r.json").read_text())
    for k in ("taps_compared", "mismatches", "cosine_vs_float", "max_abs_err_vs_float", "seconds"):
        assert k in r
    assert r["mismatches"] == 0 and r["task"] == 1
    y = np.load(tmp_path / "y.npy")
    assert y.shape == (project.spec.tokens, project.spec.embed) and y.dtype == np.float32
    g, _ = project.golden_fixed(x, 1)
    assert np.array_equal(project.layout.act_t.quantize(y), g)


def _edited_copy(project, tmp_path, name: str, byte: int, mask: int) -> Path:
    """A copy of the project (no build/) whose data/``name`` has bits ``mask`` of byte ``byte`` flipped."""
    bad = tmp_path / "bad"
    shutil.copytree(project.path, bad, ignore=shutil.ignore_patterns("build"))
    f = bad / "data" / name
    data = bytearray(f.read_bytes())
    data[byte] ^= mask
    f.write_bytes(bytes(data))
    return bad


def test_cli_csim_exits_1_on_mismatch(project, tmp_path, capsys):
    from edgemoe.codegen.project import record_data_files
    bad = _edited_copy(project, tmp_path, "golden_out_task0.bin", 5, 0x10)
    # an edited data file is named as the cause before anything runs (not reported as bit mismatches)
    assert main(["csim", str(bad)]) == 2
    cap = capsys.readouterr()
    assert "data/golden_out_task0.bin differs from the project's manifest" in cap.err and "generate it again" in cap.err
    assert cap.err.count("\n") == 1 and "BIT MISMATCHES" not in cap.out
    # a project whose manifest records the edited golden (consistent, but wrong): the comparison catches it
    record_data_files(bad, ["golden_out_task0.bin"])
    assert main(["csim", str(bad)]) == 1
    assert "BIT MISMATCHES" in capsys.readouterr().out


def test_cli_csim_names_edited_weights(project, tmp_path, capsys):
    """An edited weights.bin used to end as "N BIT MISMATCHES"; csim now names the file first."""
    bad = _edited_copy(project, tmp_path, "weights.bin", 200, 0x40)
    assert main(["csim", str(bad)]) == 2
    cap = capsys.readouterr()
    assert cap.err.startswith("edgemoe: error: data/weights.bin differs from the project's manifest (sha256 "), cap.err
    assert "MISMATCH" not in cap.out


def test_cli_csim_bad_input(project, tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((3, 8, 8), np.float32))
    assert main(["csim", str(project.path), "--input", str(tmp_path / "x.npy")]) == 2
    assert "expected (3, 32, 64)" in capsys.readouterr().err
    assert main(["csim", str(tmp_path)]) == 2
    assert main(["csim", str(project.path), "--task", "normals"]) == 2


def test_c_testbench(project, tmp_path):
    """tb.cpp (what Vitis csim runs) built with g++: reads data/, both tasks, exits 0 when bit-exact."""
    root = project.path
    exe = compile_cpp([root / "tb" / "tb.cpp", root / "src" / f"{TOP}.cpp"], tmp_path / "tb",
                      flags=["-Wno-unknown-pragmas", "-O1"], include_dirs=[root / "src", root / "compat"])
    res = subprocess.run([str(exe), str(root / "data")], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "PASS" in res.stdout
    # the ID read (n_images = 0) returns the ID the manifest's identity names
    want = int(project.manifest["identity"]["config_hash"][:8], 16)
    assert f"tb: kernel_id 0x{want:08X}\n" in res.stdout, res.stdout


# ---- random small specs -----------------------------------------------------------------------------
@st.composite
def small_specs(draw):
    heads = draw(st.sampled_from([1, 2]))
    embed = draw(st.sampled_from([16, 32]))
    depth = draw(st.integers(1, 3))
    moe = tuple(b for b in range(depth) if draw(st.booleans()))
    experts = draw(st.integers(2, 4))
    return get_preset("micro").with_(
        name="rand", img_h=16 * draw(st.integers(1, 2)), img_w=16 * draw(st.integers(1, 3)), embed=embed,
        heads=heads, depth=depth, mlp_hidden=draw(st.sampled_from([16, 48])), num_experts=experts,
        expert_hidden=draw(st.sampled_from([16, 32])), top_k=draw(st.integers(1, min(2, experts))),
        moe_blocks=moe, tasks=(TaskSpec("semseg", "semseg", 4), TaskSpec("depth", "depth", 1)))


@settings(max_examples=3, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(spec=small_specs(), design=st.sampled_from(["edge-moe", "small"]))
def test_random_specs_bit_exact(tmp_path_factory, spec, design):
    p = generate(tmp_path_factory.mktemp("rand") / "p", model=build_model(spec, seed=1), board="zcu104",
                 design=design)
    for task in range(spec.num_tasks):
        res = run_csim(p.path, task=task, taps="all", quiet=True)
        assert res["mismatches"] == 0, [r for r in res["taps"] if r["mismatches"]][:3]
    # and the kernel of every such model keeps to Vitis's rules (one engine, bursts, banks, ROM ports)
    from edgemoe.codegen.hls_check import hls_check
    hc = hls_check(p.path)
    assert not hc["violations"] and hc["engine_instances"] == 1, [str(v) for v in hc["violations"]][:5]
