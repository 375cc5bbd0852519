"""The PYNQ host runtime (edgemoe.host) against a fake pynq (tests/data/fake_pynq): no board, no emulator.

The runtime runs in subprocesses: in .venv-pynq (pynq's numpy < 2) and in the toolkit venv (numpy 2),
from the copy shipped inside the package (PKG/runtime), with the fake pynq first on PYTHONPATH.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
FAKE = REPO / "tests" / "data" / "fake_pynq"
PYNQ_PY = REPO / ".venv-pynq" / "bin" / "python"
BASE = 0xA0000000
REG = dict(pixels=0x10, weights=0x1C, scratch=0x28, out=0x34, n_images=0x40, task=0x48, reload=0x50, tap_id=0x58,
           kernel_id=0x60)

needs_pynq_venv = pytest.mark.skipif(not PYNQ_PY.exists(), reason=".venv-pynq missing: run `make setup`")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from edgemoe.codegen.generate import generate
    from edgemoe.codegen.pack_heads import write_heads
    root = tmp_path_factory.mktemp("host") / "proj"
    generate(root, preset="micro", board="zcu104")
    write_heads(root)
    return root


@pytest.fixture(scope="module")
def package(project):
    from edgemoe.boards.package import package as make_package
    out = project.parent / "pkg"
    make_package(project, out)
    return out


@pytest.fixture
def pkg(package, tmp_path):
    """A private copy of the package (tests corrupt or extend it)."""
    dst = tmp_path / "pkg"
    shutil.copytree(package, dst)
    return dst


def rehash(pkg: Path, **bitstream):
    """Recompute package_manifest.json's file records (as if packaged that way)."""
    pm = json.loads((pkg / "package_manifest.json").read_text())
    pm["files"] = {f.relative_to(pkg).as_posix(): dict(sha256=hashlib.sha256(f.read_bytes()).hexdigest(),
                                                      size=f.stat().st_size)
                   for f in sorted(pkg.rglob("*")) if f.is_file() and f.name != "package_manifest.json"}
    if bitstream:
        pm["bitstream"] = bitstream
    (pkg / "package_manifest.json").write_text(json.dumps(pm, indent=1))


def run_host(pkg, project, tmp_path, *args, python=None, env=None, code=None, shipped=True):
    """Run `python -m edgemoe.host ARGS` (or ``code``) with the fake pynq; returns (proc, log events)."""
    python = python or PYNQ_PY
    log = tmp_path / "fake_pynq.log"
    if log.exists():
        log.unlink()
    paths = [str(FAKE)] + ([str(pkg / "runtime")] if shipped else [])
    e = dict(os.environ, PYTHONPATH=os.pathsep.join(paths), FAKE_PYNQ_LOG=str(log), FAKE_PYNQ_REF=str(project / "data"))
    for k in [k for k in e if k.startswith("FAKE_PYNQ_") and k not in ("FAKE_PYNQ_LOG", "FAKE_PYNQ_REF")]:
        del e[k]
    e.pop("EDGEMOE_DEBUG", None)
    e.update(env or {})
    cmd = [str(python), "-c", code] if code else [str(python), "-m", "edgemoe.host", *map(str, args)]
    p = subprocess.run(cmd, capture_output=True, text=True, env=e, cwd=tmp_path, timeout=60)
    events = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return p, events


def writes(events):
    return [(e["offset"], e["value"]) for e in events if e["op"] == "write"]


@needs_pynq_venv
@pytest.mark.parametrize("venv", ["pynq", "toolkit"])
def test_run_matches_golden_json_and_energy(pkg, project, tmp_path, venv):
    python = PYNQ_PY if venv == "pynq" else Path(sys.executable)
    ver = subprocess.run([str(python), "-c", "import numpy; print(numpy.__version__)"], capture_output=True, text=True)
    assert (int(ver.stdout.split(".")[0]) < 2) == (venv == "pynq"), ver.stdout
    j = tmp_path / "r.json"
    p, ev = run_host(pkg, project, tmp_path, "run", pkg, "--images", 2, "--json", j, python=python,
                     env=dict(FAKE_PYNQ_RAILS="5.0"))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "match the golden outputs bit for bit" in p.stdout
    r = json.loads(j.read_text())
    assert {"frames", "mismatches", "latency_ms", "energy_mj_per_frame", "task"} <= set(r)
    assert r["frames"] == 4 and r["mismatches"] == 0 and r["task"] == [0, 1] and r["latency_ms"] > 0
    assert r["energy_mj_per_frame"] == pytest.approx(5.0 * r["latency_ms"], rel=1e-6)
    assert [t["head_output"] for t in r["tasks"]] == [[8, 32, 64], [1, 32, 64]]
    starts = [e for e in ev if e["op"] == "start"]
    assert starts[0]["n_images"] == 0   # the ID read comes first
    assert [(s["task"], s["n_images"], s["reload"]) for s in starts[1:]] == [(0, 2, 1), (1, 2, 0)]


@needs_pynq_venv
def test_register_writes_and_task_switch(pkg, project, tmp_path):
    code = f"""
import json, os
from edgemoe.host.runtime import EdgeMoeRuntime
rt = EdgeMoeRuntime({str(pkg)!r})
rt.program()
r0 = rt.run(task=0)
def mark(m):
    with open(os.environ["FAKE_PYNQ_LOG"], "a") as f:
        f.write(json.dumps(dict(op="mark", m=m)) + "\\n")
mark("switch")
r1 = rt.run(task="depth")
mark("same")
r2 = rt.run(task=1)
addrs = {{k: int(b.physical_address) for k, b in rt.buffers.items()}}
print(json.dumps(dict(addrs=addrs, tasks=[r0.task, r1.task, r2.task], shape=list(r1.tokens.shape),
                      head=list(r1.heads[0].shape))))
rt.close()
"""
    p, ev = run_host(pkg, project, tmp_path, code=code)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["tasks"] == [0, 1, 1] and out["shape"] == [1, 9, 32] and out["head"] == [1, 32, 64]
    assert [e for e in ev if e["op"] == "mmio"] == [dict(op="mmio", base=BASE, length=0x10000)]
    assert all(e["base"] == BASE for e in ev if e["op"] == "write")
    marks = [i for i, e in enumerate(ev) if e["op"] == "mark"]
    first = writes(ev[:marks[0]])
    regs = dict(first)
    for name in ("pixels", "weights", "scratch", "out"):  # 64-bit pointers as two 32-bit words
        a = out["addrs"][name]
        assert (regs[REG[name]], regs[REG[name] + 4]) == (a & 0xFFFFFFFF, a >> 32)
    id_start, start = [i for i, w in enumerate(first) if w == (0x00, 1)]
    assert first[:id_start] == [(REG["n_images"], 0)]         # the ID read: n_images = 0, then start
    assert REG["kernel_id"] not in dict(first)                # a read-only register: never written
    before = dict(first[id_start + 1:start])
    assert before[REG["n_images"]] == 1 and before[REG["task"]] == 0 and before[REG["reload"]] == 1
    assert before[REG["tap_id"]] == 0xFFFFFFFF
    assert first[start + 1:] == [(REG["reload"], 0)]          # reload only on the first run
    assert writes(ev[marks[0]:marks[1]]) == [(REG["task"], 1), (0x00, 1)]  # task switch: task register only
    assert writes(ev[marks[1]:]) == [(0x00, 1)]                             # same task: just start


@needs_pynq_venv
def test_sha_mismatch_refused_before_device(pkg, project, tmp_path):
    w = pkg / "data" / "weights.bin"
    b = bytearray(w.read_bytes())
    b[100] ^= 1
    w.write_bytes(bytes(b))
    p, ev = run_host(pkg, project, tmp_path, "run", pkg)
    assert p.returncode == 2
    err = p.stderr.strip().splitlines()
    assert len(err) == 1 and "weights.bin" in err[0] and "sha256" in err[0], p.stderr
    assert ev == []  # nothing programmed, mapped, allocated or written


@needs_pynq_venv
def test_timeout(pkg, project, tmp_path):
    p, ev = run_host(pkg, project, tmp_path, "run", pkg, "--timeout", "0.3", env=dict(FAKE_PYNQ_NEVER_DONE="1"))
    assert p.returncode == 2
    assert "kernel did not finish within 0.3 s (last status 0x1)" in p.stderr, p.stderr
    assert any(e["op"] == "start" for e in ev)


@needs_pynq_venv
@pytest.mark.parametrize("case", ["ok", "missing", "address"])
def test_overlay_checks(pkg, project, tmp_path, case):
    (pkg / "edgemoe.bit").write_bytes(b"\x00fake bitstream")
    (pkg / "edgemoe.hwh").write_text("<fake/>")
    rehash(pkg, present=True, bit="edgemoe.bit", hwh="edgemoe.hwh", source="test")
    ip = {"ok": None,
          "missing": {"axi_dma_0": {"phys_addr": 0xA0010000, "addr_range": 0x10000, "type": "xilinx.com:ip:axi_dma:7.1"}},
          "address": {"edgemoe_top_0": {"phys_addr": 0xA0010000, "addr_range": 0x10000,
                                        "type": "xilinx.com:hls:edgemoe_top:1.0"}}}[case]
    env = dict(FAKE_PYNQ_IP_DICT=json.dumps(ip)) if ip else {}
    p, ev = run_host(pkg, project, tmp_path, "run", pkg, "--task", 0, env=env)
    assert ev and ev[0] == dict(op="overlay", bitfile="edgemoe.bit")
    if case == "ok":
        assert p.returncode == 0, p.stderr
        return
    assert p.returncode == 2 and not writes(ev) and [e["op"] for e in ev] == ["overlay"]
    if case == "missing":
        assert "edgemoe_top_0 not found in the overlay's ip_dict; it has: axi_dma_0" in p.stderr, p.stderr
    else:
        assert "0xa0010000" in p.stderr and "0xa0000000" in p.stderr, p.stderr


@needs_pynq_venv
def test_corrupted_golden_exits_1(pkg, project, tmp_path):
    g = pkg / "data" / "golden_out_task1.bin"
    b = bytearray(g.read_bytes())
    b[5] ^= 0x10
    g.write_bytes(bytes(b))
    rehash(pkg)  # a consistent package whose golden output is wrong: the comparison must catch it
    j = tmp_path / "r.json"
    p, _ = run_host(pkg, project, tmp_path, "run", pkg, "--json", j)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "MISMATCH: 1 of 2 frames" in p.stdout
    r = json.loads(j.read_text())
    assert r["mismatches"] == 1 and [t["mismatched_values"] for t in r["tasks"]] == [0, 1]


@needs_pynq_venv
def test_run_sh_uses_shipped_runtime(pkg, project, tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "python3").symlink_to(PYNQ_PY)
    log = tmp_path / "fake_pynq.log"  # no edgemoe-host on PATH: run.sh falls back on PKG/runtime
    e = dict(os.environ, PATH=f"{bindir}:/usr/bin:/bin", PYTHONPATH=str(FAKE), FAKE_PYNQ_LOG=str(log),
             FAKE_PYNQ_REF=str(project / "data"))
    p = subprocess.run(["sh", str(pkg / "run.sh"), "--task", "1"], capture_output=True, text=True, env=e, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "1 depth" in p.stdout and log.exists()


def test_host_never_imports_torch(package, project, tmp_path):
    code = f"""
import sys
sys.modules["torch"] = None   # any `import torch` now fails
import edgemoe.host, edgemoe.host.runtime, edgemoe.host.cli, edgemoe.host.heads, edgemoe.host.fixed
from edgemoe.host.cli import main
rc = main(["run", {str(package)!r}, "--images", "1"])
heavy = ("torch", "onnx", "edgemoe.golden", "edgemoe.codegen")
loaded = [m for m, v in sys.modules.items() if v is not None and m.startswith(heavy)]
assert not loaded, loaded
sys.exit(rc)
"""
    p, _ = run_host(package, project, tmp_path, code=code, python=sys.executable, shipped=False)
    assert p.returncode == 0, p.stdout + p.stderr


def test_fixed_decoder_and_heads_match_golden(package, project):
    torch = pytest.importorskip("torch")
    from edgemoe.codegen.generate import load_source_model
    from edgemoe.host.fixed import FixedFormat
    from edgemoe.host.runtime import EdgeMoeRuntime
    rt = EdgeMoeRuntime(package)
    for t in range(rt.num_tasks):
        want = np.load(package / "data" / f"golden_fixed_task{t}.npy")
        got = rt.act.decode(rt.golden_out(t), want.size).reshape(want.shape)
        assert np.array_equal(got.astype(np.float32), want)
    u8 = FixedFormat.parse("ap_ufixed<8, 0, AP_RND, AP_SAT>")
    assert u8.decode(bytes([0x80, 0xFF]), 2).tolist() == [0.5, 255 / 256]
    s12 = FixedFormat.parse("ap_fixed<12,4>")
    assert s12.storage_bits == 16 and s12.decode(np.array([0x0800, 0x07FF, 0xFFFF], "<u2").tobytes(), 3).tolist() == \
        [-8.0, 2047 / 256, -1 / 256]
    model = load_source_model(preset="micro")
    tokens = np.load(package / "data" / "golden_fixed_task1.npy")
    outs, _ = rt.run_heads(tokens, 1)
    with torch.no_grad():
        ref = model.head(torch.from_numpy(tokens)[None], 1)[0].numpy()
    assert outs[0].shape == ref.shape
    np.testing.assert_allclose(outs[0], ref, rtol=1e-4, atol=1e-5)


def test_missing_heads_returns_tokens_only(pkg, project, tmp_path):
    (pkg / "data" / "heads.npz").unlink()
    rehash(pkg)
    from edgemoe.host.runtime import EdgeMoeRuntime
    rt = EdgeMoeRuntime(pkg)
    assert rt.heads is None and any("tokens only" in n for n in rt.notes)


@needs_pynq_venv
def test_real_pynq_without_board_is_one_line(package, tmp_path):
    e = {k: v for k, v in os.environ.items() if not k.startswith(("PYNQ", "FAKE_PYNQ", "XILINX"))}
    e["PYTHONWARNINGS"] = "ignore"
    p = subprocess.run([str(PYNQ_PY), "-m", "edgemoe.host", "run", str(package)], capture_output=True, text=True,
                       env=e, cwd=tmp_path, timeout=60)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "No Devices Found" in p.stderr and "Traceback" not in p.stderr, p.stderr


@needs_pynq_venv
@pytest.mark.parametrize("how", ["kernel", "package"])
def test_host_refuses_a_kernel_of_another_identity(pkg, project, tmp_path, how):
    """open() reads the ID register first (n_images = 0, then start) and refuses a kernel whose ID is not
    the package's identity, before anything is allocated: another kernel on the board ("kernel"), or
    the package manifest's identity changed ("package": that file is not among those verified)."""
    import re
    pm_path = pkg / "package_manifest.json"
    pm = json.loads(pm_path.read_text())
    want = int(pm["identity"]["config_hash"][:8], 16)
    cfg = (project / "src" / "edgemoe_config.h").read_text()
    assert want == int(re.search(r"#define EDGEMOE_KERNEL_ID 0x([0-9A-F]{8})u", cfg).group(1), 16)
    env = {}
    if how == "kernel":
        got, expected = want ^ 0x80000001, want
        env = dict(FAKE_PYNQ_KERNEL_ID=f"{got:08x}")
    else:
        got, expected = want, want ^ 0x1
        pm["identity"]["config_hash"] = f"{expected:08x}" + pm["identity"]["config_hash"][8:]
        pm_path.write_text(json.dumps(pm, indent=1))
    p, ev = run_host(pkg, project, tmp_path, "run", pkg, env=env)
    err = p.stderr.strip().splitlines()
    assert p.returncode == 2 and len(err) == 1, p.stdout + p.stderr
    assert (f"the kernel on the board has ID 0x{got:08X}, this package was built for 0x{expected:08X} (model micro, "
            f"precision w16a32, design zcu104)") in err[0], err[0]
    assert not [e for e in ev if e["op"] in ("allocate", "sync_to_device")]   # refused before any buffer
    assert [(e["n_images"]) for e in ev if e["op"] == "start"] == [0]          # the ID read only


def test_package_without_identity_is_refused(pkg):
    pm = json.loads((pkg / "package_manifest.json").read_text())
    del pm["identity"]
    (pkg / "package_manifest.json").write_text(json.dumps(pm))
    from edgemoe.errors import EdgeMoeError
    from edgemoe.host.runtime import EdgeMoeRuntime
    with pytest.raises(EdgeMoeError, match="records no model identity"):
        EdgeMoeRuntime(pkg)
