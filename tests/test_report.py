"""`edgemoe report` trusts no JSON: each result file is checked against the schema of the command that
writes it (edgemoe.codegen.results_schema) and against the project's model; an emulator's time is shown
as emulation, never as board latency; the report folder is edgemoe's own, a user's folder is never
touched; and the demo's report agrees with the demo's summary."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FAKE = REPO / "tests" / "data" / "fake_pynq"
PYNQ_PY = REPO / ".venv-pynq" / "bin" / "python"
HOST_PY = PYNQ_PY if PYNQ_PY.exists() else Path(sys.executable)


def run_cli(*args, cwd=None, timeout=900):
    return subprocess.run([sys.executable, "-m", "edgemoe.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


def one_line_error(p, *fragments):
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    err = p.stderr.strip()
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err
    for f in fragments:
        assert f in err, err
    return err


def make_project(root: Path, **kw) -> Path:
    from edgemoe.codegen.generate import generate
    generate(root, quiet=True, **kw)
    return root


def make_package(project: Path) -> Path:
    from edgemoe.boards.package import package
    out = project.parent / (project.name + "_pkg")
    package(project, out)
    return out


def host_run(pkg: Path, project: Path, json_path: Path) -> dict:
    """`edgemoe-host run PKG --json J` (the package's shipped runtime) against the fake pynq of
    tests/data/fake_pynq, whose "kernel" answers with the project's golden outputs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FAKE_PYNQ_", "PYNQ_REMOTE", "EDGEMOE_"))}
    env.update(PYTHONPATH=os.pathsep.join([str(FAKE), str(pkg / "runtime")]), FAKE_PYNQ_REF=str(project / "data"))
    p = subprocess.run([str(HOST_PY), "-m", "edgemoe.host", "run", str(pkg), "--images", "2", "--no-head", "--json",
                        str(json_path)], capture_output=True, text=True, env=env, cwd=json_path.parent, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    return json.loads(json_path.read_text())


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("report")


@pytest.fixture(scope="module")
def project(work):
    return make_project(work / "proj", preset="micro", board="zcu104")


@pytest.fixture(scope="module")
def package(project):
    return make_package(project)


@pytest.fixture(scope="module")
def board_json(package, project, work):
    """A real board JSON (target board: the fake pynq is a local device)."""
    j = work / "board.json"
    host_run(package, project, j)
    return j


@pytest.fixture(scope="module")
def sim_json(work):
    """A real `edgemoe sim --json` (one unit, a short run on Verilator)."""
    from edgemoe.sim.tools import find_simulators
    if "verilator" not in find_simulators():
        pytest.skip("verilator is not installed")
    j = work / "sim.json"
    p = run_cli("sim", "--unit", "gelu", "--simulator", "verilator", "--vectors", 50, "--json", j)
    assert p.returncode == 0, p.stdout + p.stderr
    return j


def write(path: Path, doc) -> Path:
    path.write_text(json.dumps(doc))
    return path


def report_json(out: Path) -> dict:
    return {r["rung"]: r for r in json.loads((out / "report.json").read_text())["ladder"]}


# ---- schemas -------------------------------------------------------------------------------------
@pytest.mark.parametrize("doc, words", [
    ({"foo": 1}, "(missing key 'units')"),
    ([], "(it holds an empty list; expected an object with key(s) 'units'"),
    ([{"units": {}}], "(it holds a list; expected an object"),
    ("units", "(it holds \"units\"; expected an object"),
    ({"units": {}}, "key 'units' is an empty object; expected an object of named entries (at least one)"),
])
def test_sim_json_that_sim_did_not_write_is_one_line(project, tmp_path, doc, words):
    bad = write(tmp_path / "r.json", doc)
    out = tmp_path / "rep"
    p = run_cli("report", project, "--no-csim", "--sim-json", bad, "--output", out)
    one_line_error(p, f"--sim-json {bad}: not the output of `edgemoe sim --json`", words)
    assert not out.exists()


def test_damaged_real_sim_json_names_the_key(project, sim_json, tmp_path):
    doc = json.loads(sim_json.read_text())
    doc["units"]["gelu"]["mismatches"] = -3
    p = run_cli("report", project, "--no-csim", "--sim-json", write(tmp_path / "s.json", doc), "--output", tmp_path / "o")
    one_line_error(p, "key 'units.gelu.mismatches' is -3; expected an integer >= 0")
    doc = json.loads(sim_json.read_text())
    del doc["config"]["precision"]
    p = run_cli("report", project, "--no-csim", "--sim-json", write(tmp_path / "s.json", doc), "--output", tmp_path / "o")
    one_line_error(p, "missing key 'config.precision'")
    assert not (tmp_path / "o").exists()


def test_sim_json_at_another_precision_is_refused(project, sim_json, tmp_path):
    doc = json.loads(sim_json.read_text())
    doc["config"]["precision"] = "w8a8"
    p = run_cli("report", project, "--no-csim", "--sim-json", write(tmp_path / "s.json", doc), "--output", tmp_path / "o")
    one_line_error(p, "results at precision w8a8, but this project is w16a32")


def test_valid_sim_and_board_json_are_accepted_and_shown(project, sim_json, board_json, tmp_path):
    b = json.loads(board_json.read_text())
    assert b["target"] == "board" and b["identity"]["model"] == "micro" and b["identity"]["precision"] == "w16a32"
    out = tmp_path / "rep"
    p = run_cli("report", project, "--no-csim", "--sim-json", sim_json, "--board-json", board_json, "--output", out)
    assert p.returncode == 0, p.stderr
    lad = report_json(out)
    assert lad["RTL"]["mismatches"] == 0 and "gelu (50 vectors)" in lad["RTL"]["what"]
    assert lad["board"]["target"] == "board" and lad["board"]["latency_ms"] == pytest.approx(b["latency_ms"])
    assert lad["board"]["mismatches"] == 0 and lad["board"]["emulation_s_per_frame"] is None
    md = (out / "report.md").read_text()
    assert "ms per frame on the board" in md and "emulation" not in md
    assert "no results given" not in md


def test_board_json_of_another_model_is_refused(project, board_json, work, tmp_path):
    other = make_project(work / "tiny", preset="m3vit-tiny-edge", board="zcu104")
    j = tmp_path / "tiny_board.json"
    host_run(make_package(other), other, j)
    out = tmp_path / "rep"
    p = run_cli("report", project, "--no-csim", "--board-json", j, "--output", out)
    one_line_error(p, f"--board-json {j}: results of another model (m3vit-tiny-edge w16a32",
                   "not of this project (micro w16a32", "model 'm3vit-tiny-edge', this project's 'micro'")
    assert not out.exists()


def test_board_json_of_the_same_model_with_other_weights_is_refused(project, work, tmp_path):
    ours = json.loads((project / "data" / "manifest.json").read_text()).get("identity") or {}
    if "weights_sha256" not in ours:
        pytest.skip("the project does not record its weights' hash yet")
    other = make_project(work / "seed1", preset="micro", board="zcu104", seed=1)
    j = tmp_path / "seed1_board.json"
    host_run(make_package(other), other, j)
    p = run_cli("report", project, "--no-csim", "--board-json", j, "--output", tmp_path / "rep")
    one_line_error(p, "results of another model (micro w16a32", "weights_sha256")


def test_board_json_without_identity_or_target_is_refused(project, board_json, tmp_path):
    for key in ("identity", "target"):
        doc = json.loads(board_json.read_text())
        del doc[key]
        p = run_cli("report", project, "--no-csim", "--board-json", write(tmp_path / "b.json", doc),
                    "--output", tmp_path / "rep")
        one_line_error(p, "not the output of `edgemoe-host run PKG --json`", f"(missing key '{key}')")
    doc = json.loads(board_json.read_text())
    doc["target"] = "fpga"
    p = run_cli("report", project, "--no-csim", "--board-json", write(tmp_path / "b.json", doc),
                "--output", tmp_path / "rep")
    one_line_error(p, "key 'target' is \"fpga\"; expected one of \"emulator\", \"board\"")


def test_csim_json_is_checked_and_becomes_the_csim_rung(project, tmp_path):
    from edgemoe.codegen.csim import run_csim
    from edgemoe.codegen.report import write_report
    from edgemoe.errors import EdgeMoeError
    js = []
    for task in (0, 1):
        js.append(tmp_path / f"c{task}.json")
        run_csim(project, task=task, taps="all", quiet=True, json_path=js[-1])
    docs = [json.loads(j.read_text()) for j in js]
    write_report(project, tmp_path / "rep", run_csim=False, csim_json=js, say=lambda m: None)
    csim = report_json(tmp_path / "rep")["csim"]
    assert csim["mismatches"] == 0 and csim["tensors"] == sum(d["taps_compared"] for d in docs)
    assert csim["cosine"] == min(d["cosine_vs_float"] for d in docs)
    assert "not run" not in (tmp_path / "rep" / "report.md").read_text()
    bad = dict(docs[0])
    del bad["taps_compared"]
    with pytest.raises(EdgeMoeError, match=r"not the output of `edgemoe csim DIR --json` \(missing key 'taps_compared'\)"):
        write_report(project, tmp_path / "rep2", csim_json=[write(tmp_path / "bad.json", bad)], say=lambda m: None)
    bad = dict(docs[0], precision="w8a8")
    with pytest.raises(EdgeMoeError, match="results at precision w8a8, but this project is w16a32"):
        write_report(project, tmp_path / "rep2", csim_json=[write(tmp_path / "bad.json", bad)], say=lambda m: None)
    assert not (tmp_path / "rep2").exists()


# ---- emulation is labelled as emulation ---------------------------------------------------------------
class _Remote:
    capabilities = {"REMOTE": True}
    port = 7967

    def __init__(self, ip, version):
        self.ip_addr, self.version, self.name = ip, version, "ZCU104"

    def read_file(self, path):
        if self.version is None:
            raise RuntimeError("gone")
        assert path == "/proc/version"
        return self.version


class _Local:
    capabilities = {}
    name = "ZCU104"


def test_run_target_asks_the_device_where_it_ran(monkeypatch):
    from types import SimpleNamespace

    from edgemoe.sim.emulator import BOARD_FILES
    from edgemoe.host.cli import run_target
    emulated = BOARD_FILES["/proc/version"]
    real = b"Linux version 6.6.10-xilinx-v2024.1 (oe-user@oe-host) #1 SMP aarch64 GNU/Linux\n"

    def target(dev, remote=None):
        if remote:
            monkeypatch.setenv("PYNQ_REMOTE_DEVICES", remote)
        else:
            monkeypatch.delenv("PYNQ_REMOTE_DEVICES", raising=False)
        return run_target(SimpleNamespace(Device=SimpleNamespace(active_device=dev)))[0]
    assert target(_Remote("127.0.0.1", emulated), "127.0.0.1") == "emulator"
    assert target(_Remote("10.0.0.7", emulated), "10.0.0.7") == "emulator"   # the answer wins over the address
    assert target(_Remote("127.0.0.1", real), "127.0.0.1") == "board"         # a board behind an ssh tunnel
    assert target(_Remote("10.0.0.7", real), "10.0.0.7") == "board"
    assert target(_Remote("127.0.0.1", None), "127.0.0.1") == "emulator"     # unanswered: never claim a board
    assert target(_Remote("10.0.0.7", None), "10.0.0.7") == "board"
    assert target(_Local()) == "board"
    assert target(None, "localhost") == "emulator" and target(None) == "board"


@pytest.fixture(scope="module")
def emulator_json(package, work):
    """`edgemoe-host run --json` through the real pynq client against `edgemoe emulate`."""
    import signal
    host = REPO / ".venv-pynq" / "bin" / "edgemoe-host"
    if not host.exists():
        pytest.skip(".venv-pynq missing: run `make setup`")
    emu = subprocess.Popen([sys.executable, "-m", "edgemoe.cli", "emulate", "--package", str(package), "--port", "0"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env=dict(os.environ, PYTHONUNBUFFERED="1"))
    j = work / "emulated.json"
    try:
        line = emu.stdout.readline()
        assert "127.0.0.1:" in line, line + emu.stderr.read()
        port = line.split("127.0.0.1:")[1].split()[0]
        r = subprocess.run([str(host), "run", str(package), "--images", "2", "--json", str(j), "--timeout", "60"],
                           capture_output=True, text=True, timeout=300,
                           env=dict(os.environ, PYNQ_REMOTE_DEVICES="127.0.0.1", EDGEMOE_PYNQ_PORT=port))
        assert r.returncode == 0, r.stdout + r.stderr
        assert "emulation (C simulation)" in r.stdout   # the host says so too
    finally:
        emu.send_signal(signal.SIGTERM)
        try:
            emu.wait(10)
        except subprocess.TimeoutExpired:
            emu.kill()
    return j


def test_a_run_on_the_emulator_is_recorded_as_emulation(emulator_json):
    """The host asks the device itself (its /proc/version), not only the address it dialled."""
    from edgemoe.codegen.results_schema import check_results
    doc = json.loads(emulator_json.read_text())
    assert doc["target"] == "emulator" and "edgemoe emulate" in doc["device"], doc["device"]
    assert doc["mismatches"] == 0 and doc["identity"]["model"] == "micro"
    check_results(doc, "board", emulator_json)


def test_emulator_board_json_is_shown_as_emulation(project, emulator_json, tmp_path):
    b = json.loads(emulator_json.read_text())
    out = tmp_path / "rep"
    p = run_cli("report", project, "--no-csim", "--board-json", emulator_json, "--output", out)
    assert p.returncode == 0, p.stderr
    rung = report_json(out)["board"]
    assert rung["target"] == "emulator" and rung["latency_ms"] is None
    assert rung["emulation_s_per_frame"] == pytest.approx(b["latency_ms"] / 1e3)
    for f in ("report.md", "report.html"):
        text = (out / f).read_text()
        ladder = text.split("Accuracy ladder")[1]
        assert f"emulation (C simulation) {b['latency_ms'] / 1e3:.3f} s/frame, not board latency" in ladder, f
        assert "ms per frame" not in ladder and "on the board" not in ladder, f


# ---- the report folder ---------------------------------------------------------------------------------
def test_report_output_onto_a_user_folder_is_refused_and_left_untouched(project, tmp_path):
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("my notes")
    before = sorted((p.name, p.stat().st_mtime_ns) for p in user.iterdir())
    for extra in ((), ("--force",)):
        p = run_cli("report", project, "--no-csim", "--output", user, *extra)
        one_line_error(p, f"--output {user}: folder exists and was not made by edgemoe")
    assert sorted((p.name, p.stat().st_mtime_ns) for p in user.iterdir()) == before
    assert (user / "notes.txt").read_text() == "my notes"
    f = tmp_path / "file"
    f.write_text("x")
    one_line_error(run_cli("report", project, "--no-csim", "--output", f, "--force"), "exists and is not a folder")
    assert f.read_text() == "x"
    one_line_error(run_cli("report", project, "--no-csim", "--output", project, "--force"), "is the project folder")
    assert (project / "data" / "manifest.json").is_file()


def test_report_explicit_output_needs_force_to_be_replaced(project, tmp_path):
    out = tmp_path / "rep"
    assert run_cli("report", project, "--no-csim", "--output", out).returncode == 0
    (out / "stale.txt").write_text("from before")
    one_line_error(run_cli("report", project, "--no-csim", "--output", out), "folder exists (use --force")
    assert (out / "stale.txt").exists()
    p = run_cli("report", project, "--no-csim", "--output", out, "--force")
    assert p.returncode == 0, p.stderr
    assert (out / "report.html").is_file() and not (out / "stale.txt").exists()


def test_report_rerun_over_its_own_default_output(project, tmp_path):
    proj = tmp_path / "p"
    shutil.copytree(project, proj)
    shutil.rmtree(proj / "report", ignore_errors=True)
    for _ in range(2):
        p = run_cli("report", proj, "--no-csim")
        assert p.returncode == 0, p.stderr
        assert (proj / "report" / "report.html").is_file() and (proj / "report" / ".edgemoe").is_file()
        assert not (proj / "report" / "stale.txt").exists()
        (proj / "report" / "stale.txt").write_text("replaced on the next run")
    assert sorted(x.name for x in proj.iterdir() if x.name.startswith(".report")) == []   # no temporaries left
    # a report written before edgemoe marked its folders (the report's files only) is replaced
    (proj / "report" / "stale.txt").unlink()
    (proj / "report" / ".edgemoe").unlink()
    (proj / "report" / "report.md").write_text("old report")
    assert run_cli("report", proj, "--no-csim").returncode == 0
    assert (proj / "report" / "report.md").read_text() != "old report"
    # a folder of the user's at DIR/report is not edgemoe's: refused, untouched
    shutil.rmtree(proj / "report")
    (proj / "report").mkdir()
    (proj / "report" / "report.md").write_text("my notes")
    (proj / "report" / "mine.txt").write_text("keep")
    one_line_error(run_cli("report", proj, "--no-csim"), f"--output (default) {proj / 'report'}: folder exists and "
                   "was not made by edgemoe")
    assert (proj / "report" / "mine.txt").read_text() == "keep" and not (proj / "report" / ".edgemoe").exists()


# ---- the demo --------------------------------------------------------------------------------------------
def test_demo_out_onto_a_user_folder_or_a_file_is_refused_before_any_work(tmp_path):
    user = tmp_path / "mine"
    user.mkdir()
    (user / "a.txt").write_text("mine")
    one_line_error(run_cli("demo", "--preset", "micro", "--out", user, timeout=60), f"--out {user}: folder exists")
    assert [p.name for p in user.iterdir()] == ["a.txt"]
    f = tmp_path / "f"
    f.write_text("x")
    one_line_error(run_cli("demo", "--preset", "micro", "--out", f, timeout=60), "exists and is not a folder")
    assert f.read_text() == "x"
    other = tmp_path / "gen"
    make_project(other, preset="micro", board="zcu104")
    one_line_error(run_cli("demo", "--preset", "micro", "--out", other, timeout=60),
                   "written by `edgemoe generate`, not by the demo")
    assert (other / "data" / "manifest.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f", "gen", "mine"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One demo run (micro preset), over a folder that carries the demo's marker as an earlier run
    leaves it (checked below): the demo replaces its own output without a flag."""
    out = tmp_path_factory.mktemp("demo") / "demo_out"
    out.mkdir()
    (out / ".edgemoe").write_text(json.dumps(dict(tool="edgemoe", command="demo", written="earlier")))
    (out / "stale.txt").write_text("from an earlier run")
    p = run_cli("demo", "--preset", "micro", "--out", out)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr
    return out, p


def test_demo_reruns_over_its_own_output(demo):
    out, p = demo
    assert not (out / "stale.txt").exists() and (out / "summary.md").is_file()
    assert json.loads((out / ".edgemoe").read_text())["command"] == "demo"   # what the next run will find
    assert "writing into" in p.stdout and "[10/10]" in p.stdout              # the steps show as they run
    assert f"outputs in {out}/" in p.stdout
    assert [x.name for x in out.parent.iterdir()] == ["demo_out"]            # no temporary folder left


def test_demo_report_agrees_with_its_summary(demo):
    out = demo[0]
    summary = json.loads((out / "summary.json").read_text())
    lad = report_json(out / "report")
    md = (out / "report" / "report.md").read_text()
    assert "not run" not in md and "no results given" not in md
    # csim: the demo's own runs, every task
    csim = summary["csim"]
    assert lad["csim"]["mismatches"] == sum(r["mismatches"] for r in csim.values())
    assert lad["csim"]["tensors"] == sum(r["taps_compared"] for r in csim.values())
    assert lad["csim"]["cosine"] == pytest.approx(min(r["cosine_vs_float"] for r in csim.values()))
    # RTL: the demo's unit benches
    rtl = summary["rtl"]
    assert set(lad["RTL"]["units"]) == set(rtl)
    assert lad["RTL"]["mismatches"] == sum(r["mismatches"] for r in rtl.values() if "error" not in r)
    assert f"({sum(r['vectors'] for r in rtl.values() if 'error' not in r)} vectors)" in lad["RTL"]["what"]
    # board: the emulator, shown as emulation in both
    b = summary["board"]
    assert "error" not in b, b
    assert b["target"] == "emulator" and lad["board"]["target"] == "emulator"
    assert lad["board"]["mismatches"] == b["mismatches"]
    assert lad["board"]["emulation_s_per_frame"] == pytest.approx(b["latency_ms"] / 1e3)
    smd = (out / "summary.md").read_text()
    assert f"emulation (C simulation) {b['latency_ms'] / 1e3:.3f} s/frame" in smd
    assert f"emulation (C simulation) {b['latency_ms'] / 1e3:.3f} s/frame" in md
    assert "ms/frame" not in smd.split("Emulated board")[1].splitlines()[0]


def test_demo_output_from_before_markers_is_recognised_and_nothing_else(tmp_path):
    """A demo_out written before edgemoe marked its folders is the demo's (its summary files say so);
    a folder that only looks a little like it is not."""
    from edgemoe.demo import _check_out
    from edgemoe.errors import EdgeMoeError
    old = tmp_path / "old"
    (old / "hls_project").mkdir(parents=True)
    (old / "summary.md").write_text("# edgemoe demo: micro\n")
    (old / "summary.json").write_text(json.dumps({"preset": "micro", "tasks": {}}))
    _check_out(old)
    assert json.loads((old / ".edgemoe").read_text())["command"] == "demo"
    near = tmp_path / "near"
    near.mkdir()
    (near / "summary.md").write_text("# edgemoe demo: micro\n")
    (near / "summary.json").write_text(json.dumps({"preset": "micro", "tasks": {}}))   # no hls_project/
    with pytest.raises(EdgeMoeError, match="not made by edgemoe"):
        _check_out(near)
    assert not (near / ".edgemoe").exists()
