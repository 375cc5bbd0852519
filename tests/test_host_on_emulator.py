"""End to end without a board: `edgemoe-host run` in .venv-pynq, through the REAL pynq client
(PYNQ.remote over gRPC), drives `edgemoe emulate`, whose kernel is the C-simulated generated C++."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYNQ_ENV = ROOT / ".venv-pynq" / "bin"


@pytest.fixture(scope="module")
def pkg(tmp_path_factory):
    assert (PYNQ_ENV / "edgemoe-host").exists(), ".venv-pynq is missing: run `make setup`"
    from edgemoe.boards.package import package
    from edgemoe.codegen.generate import generate
    d = tmp_path_factory.mktemp("e2e")
    generate(d / "proj", preset="micro", board="zcu104")
    package(d / "proj", d / "pkg")
    return d / "pkg"


def start_emulator(pkg, *extra):
    proc = subprocess.Popen([sys.executable, "-m", "edgemoe.cli", "emulate", "--package", str(pkg), "--port", "0",
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    line = []
    t = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)
    t.start()
    t.join(120)
    if not line or "127.0.0.1:" not in line[0]:
        proc.kill()
        raise AssertionError(f"emulator did not start: {line} {proc.stderr.read()}")
    return proc, int(line[0].split("127.0.0.1:")[1].split()[0])


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def host_run(pkg, port, *args, timeout=180):
    env = dict(os.environ, PYNQ_REMOTE_DEVICES="127.0.0.1", EDGEMOE_PYNQ_PORT=str(port))
    return subprocess.run([str(PYNQ_ENV / "edgemoe-host"), "run", str(pkg), *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def run_frames(pkg, tmp_path, images: int) -> dict:
    """`edgemoe emulate` on ``pkg``, `edgemoe-host run --images N --json` against it (exit 0), the emulator
    stopped: the run's JSON."""
    proc, port = start_emulator(pkg)
    try:
        j = tmp_path / "r.json"
        r = host_run(pkg, port, "--images", str(images), "--json", str(j), "--timeout", "60")
        assert r.returncode == 0, r.stdout + r.stderr
        return json.loads(j.read_text())
    finally:
        stop(proc)


def test_host_runtime_drives_the_emulated_board_bit_exact(pkg, tmp_path):
    res = run_frames(pkg, tmp_path, 2)
    assert res["mismatches"] == 0
    assert res["frames"] >= 2
    assert res["latency_ms"] > 0


def test_emulator_killed_mid_run_fails_clearly_without_hanging(pkg):
    proc, port = start_emulator(pkg, "--latency", "60")
    killer = threading.Timer(8.0, proc.kill)
    killer.start()
    try:
        t0 = time.time()
        r = host_run(pkg, port, "--timeout", "30", timeout=120)
        assert r.returncode != 0
        assert time.time() - t0 < 60
        err = (r.stderr + r.stdout).strip()
        assert "Traceback" not in r.stderr
        assert len(err.splitlines()) == 1 and "connection to the board lost" in err, err
    finally:
        killer.cancel()
        stop(proc)


def test_host_refuses_a_kernel_of_another_identity(pkg, tmp_path):
    """The host reads the kernel's ID register (an n_images = 0 call) and refuses a kernel whose ID is
    not its package's: here a copy of the package whose identity names another configuration, against
    the emulator of the original one (package_manifest.json is not among the files it verifies)."""
    import shutil
    other = tmp_path / "other"
    shutil.copytree(pkg, other)
    pm = json.loads((other / "package_manifest.json").read_text())
    real = int(pm["identity"]["config_hash"][:8], 16)
    fake = real ^ 0x00010001
    pm["identity"]["config_hash"] = f"{fake:08x}" + pm["identity"]["config_hash"][8:]
    (other / "package_manifest.json").write_text(json.dumps(pm, indent=1))
    proc, port = start_emulator(pkg)
    try:
        r = host_run(other, port, "--timeout", "60")
        err = r.stderr.strip()
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stdout + r.stderr
        assert len(err.splitlines()) == 1, err
        assert (f"the kernel on the board has ID 0x{real:08X}, this package was built for 0x{fake:08X} "
                f"(model micro, precision w16a32, design zcu104): program the package's bitstream or package the "
                f"project the kernel was built from") in err, err
        # the original package on the same emulator: accepted
        ok = host_run(pkg, port, "--timeout", "60", "--task", "0")
        assert ok.returncode == 0, ok.stdout + ok.stderr
    finally:
        stop(proc)
    assert "n_images <= 0: ID read only" in proc.stderr.read()


def test_no_board_or_emulator_is_one_quick_line(pkg):
    """PYNQ_REMOTE_DEVICES set, nothing listening: one line naming the address and port tried and
    suggesting `edgemoe emulate`, in far less than pynq's own 5 s connect timeout."""
    import socket
    with socket.socket() as s:   # a port nobody listens on (bound, not listening: connections are refused)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        t0 = time.monotonic()
        r = host_run(pkg, port, timeout=60)
        took = time.monotonic() - t0
    err = r.stderr.strip()
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(err.splitlines()) == 1, r.stdout + r.stderr
    assert f"no PYNQ board or emulator at 127.0.0.1:{port} (PYNQ_REMOTE_DEVICES=127.0.0.1, port {port})" in err, err
    assert f"edgemoe emulate --package {pkg}" in err, err
    assert took < 4.5, took


def test_w8a8_options_run_bit_exact_on_the_emulated_board(tmp_path_factory, tmp_path):
    """Issue 14: an outlier checkpoint at w8a8 with every option (smoothed weights packed, 16-bit attention,
    per-channel weight scales beside the biases) through the packaged host runtime and the emulated board,
    bit for bit against the golden outputs."""
    from edgemoe.boards.package import package
    from edgemoe.codegen.generate import generate
    from edgemoe.golden.outlier_checkpoint import outlier_model
    from edgemoe.spec import get_preset
    d = tmp_path_factory.mktemp("e2e_w8a8_options")
    p = generate(d / "proj", model=outlier_model(get_preset("micro")), board="zcu104",
                 precision="w8a8+smooth+wide-attn+per-channel")
    assert p.prec.smooth and p.prec.types["qkv"].W == 16 and "per-channel" in p.prec.options
    package(d / "proj", d / "pkg")
    res = run_frames(d / "pkg", tmp_path, 2)
    assert res["mismatches"] == 0 and res["frames"] >= 2
