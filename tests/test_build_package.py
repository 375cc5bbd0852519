"""`edgemoe build` with the tools missing, present (fake v++ / vivado on PATH: v++ writes an IP,
vivado runs the real build_bd.tcl in tclsh with the Vivado commands stubbed) and failing midway;
`edgemoe package`: contents, sha256 manifest, tarball round trip, refusal, run.sh."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from edgemoe.boards.package import verify_package
from edgemoe.cli import main

from test_boards import TCLSH, project, tcl_stub  # noqa: F401  (shared session fixtures)

SYS_PATH = "/usr/bin:/bin"

FAKE_VPP = r"""#!/bin/sh
# fake v++: records its call, checks the config, writes an ip_catalog export under --work_dir
echo "v++ cwd=$(pwd) args=$*" >> "$FAKE_LOG"
[ -f hls_config_ip.cfg ] || { echo "no hls_config_ip.cfg in $(pwd)"; exit 9; }
grep -q '^package.output.format=ip_catalog' hls_config_ip.cfg || { echo "not an ip_catalog config"; exit 9; }
work=""
while [ $# -gt 0 ]; do
    case "$1" in --work_dir) work="$2"; shift ;; esac
    shift
done
[ -n "$work" ] || { echo "no --work_dir"; exit 9; }
mkdir -p "$work/hls/impl/ip"
echo "INFO: [HLS 200-111] fake synthesis"
if [ "$FAKE_FAIL" = "hls" ]; then echo "ERROR: [HLS 207-1] fake failure"; exit 3; fi
echo '<spirit:component/>' > "$work/hls/impl/ip/component.xml"
"""

FAKE_VIVADO = r"""#!/bin/sh
# fake vivado: records its call, then runs the -source script in tclsh with Vivado stubbed
echo "vivado cwd=$(pwd) args=$*" >> "$FAKE_LOG"
script=""
while [ $# -gt 0 ]; do
    case "$1" in
        -source) script="$2"; shift ;;
        -tclargs) shift; break ;;
    esac
    shift
done
[ -f "$script" ] || { echo "no script $script"; exit 9; }
if [ "$FAKE_FAIL" = "vivado_partial" ]; then
    echo "half a bitstream" > "$2/edgemoe.bit"
    echo "ERROR: [Vivado 12-1] fake crash during write_bitstream"; exit 1
fi
[ "$FAKE_FAIL" = "impl" ] && export EDGEMOE_STUB_IMPL_PROGRESS=40%
export EDGEMOE_STUB_CALLS="$FAKE_LOG.stub"
exec "$TCLSH_BIN" "$STUB_TCL" "$script" "$@"
"""

needs_tclsh = pytest.mark.skipif(TCLSH is None, reason="tclsh not installed")


def _write_exe(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


@pytest.fixture
def proj(project, tmp_path):  # noqa: F811
    d = tmp_path / "proj"
    shutil.copytree(project, d, ignore=shutil.ignore_patterns("build"))
    return d


@pytest.fixture
def fakebin(tmp_path, tcl_stub, monkeypatch):  # noqa: F811
    b = tmp_path / "bin"
    b.mkdir()
    log = tmp_path / "calls.log"
    monkeypatch.setenv("FAKE_LOG", str(log))
    monkeypatch.setenv("STUB_TCL", str(tcl_stub))
    monkeypatch.setenv("TCLSH_BIN", TCLSH or "tclsh")
    monkeypatch.setenv("EDGEMOE_VIVADO_JOBS", "3")
    monkeypatch.delenv("FAKE_FAIL", raising=False)
    monkeypatch.setenv("PATH", f"{b}:{SYS_PATH}")
    return b, log


def _tools(fakebin, vpp=True, vivado=True):
    b, _ = fakebin
    if vpp:
        _write_exe(b / "v++", FAKE_VPP)
    if vivado:
        _write_exe(b / "vivado", FAKE_VIVADO)


def _calls(log: Path) -> list:
    return log.read_text().splitlines() if log.exists() else []


# ---- build: tools missing ------------------------------------------------------------------------
def test_build_tools_missing(proj, fakebin, capsys):
    for tool in ("v++", "vitis_hls", "vivado"):
        assert shutil.which(tool) is None
    assert main(["build", str(proj)]) == 2
    err = capsys.readouterr().err
    first = err.splitlines()[0]
    assert first.startswith("edgemoe: error:") and "Vitis HLS (v++ or vitis_hls)" in first and "Vivado (vivado)" in first
    assert f"cd {proj.resolve()}" in err
    assert "v++ -c --mode hls --config hls_config_ip.cfg --work_dir build/hls" in err
    assert "vitis_hls -f vivado/hls_ip.tcl -tclargs build/hls" in err
    assert "vivado -mode batch -nojournal -log build/vivado.log -source vivado/build_bd.tcl -tclargs build/hls build" in err
    assert not (proj / "build").exists()
    # --until hls needs only Vitis HLS
    assert main(["build", str(proj), "--until", "hls"]) == 2
    err = capsys.readouterr().err
    assert "Vitis HLS" in err.splitlines()[0] and "Vivado" not in err and "vivado -mode" not in err
    assert not (proj / "build").exists()


def test_build_vivado_missing_only(proj, fakebin, capsys):
    _tools(fakebin, vivado=False)
    assert main(["build", str(proj)]) == 2
    first = capsys.readouterr().err.splitlines()[0]
    assert "Vivado (vivado)" in first and "Vitis HLS" not in first
    assert not (proj / "build").exists() and _calls(fakebin[1]) == []  # nothing ran


# ---- build: tools present ------------------------------------------------------------------------
@needs_tclsh
def test_build_present_full(proj, fakebin, capsys):
    _tools(fakebin)
    assert main(["build", str(proj)]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "0xA0000000" in out
    b = proj / "build"
    calls = _calls(fakebin[1])
    assert len(calls) == 2
    vpp, viv = calls
    assert vpp.startswith(f"v++ cwd={proj} args=-c --mode hls --config hls_config_ip.cfg --work_dir {b}/.staging-")
    assert vpp.endswith("/hls")
    staging = vpp.split("--work_dir ")[1][:-len("/hls")]
    assert viv == (f"vivado cwd={proj} args=-mode batch -nojournal -log {staging}/logs/vivado.log -source "
                   f"vivado/build_bd.tcl -tclargs {staging}/hls {staging} 3")
    assert not Path(staging).exists() and not list(b.glob(".staging-*")) and not list(b.glob(".old-*"))
    for f in ("edgemoe.bit", "edgemoe.hwh", "edgemoe.xsa", "build_info.json", "hls/hls/impl/ip/component.xml",
              "reports/timing.txt", "logs/hls.log", "logs/vivado_stdout.log"):
        assert (b / f).is_file(), f
    info = json.loads((b / "build_info.json").read_text())
    assert info["until"] == "bitstream" and [s["step"] for s in info["steps"]] == ["hls", "bitstream"]
    assert info["outputs"]["edgemoe.bit"]["sha256"] == hashlib.sha256((b / "edgemoe.bit").read_bytes()).hexdigest()
    assert info["kernel"]["base_address"] == "0xA0000000" and info["board"]["board_part"] == "xilinx.com:zcu104:part0:1.1"
    # the stubbed Vivado saw the block design of the real script
    stub = Path(str(fakebin[1]) + ".stub").read_text()
    assert f"create_project -force edgemoe_prj {staging}/vivado -part xczu7ev-ffvc1156-2-e" in stub
    assert "connect_bd_intf_net smartconnect_gmem_w/M00_AXI zynq_ultra_ps_e_0/S_AXI_HP0_FPD" in stub
    assert f"set_property ip_repo_paths {staging}/hls current_project" in stub


@needs_tclsh
def test_build_until_hls_then_rebuild(proj, fakebin, capsys):
    _tools(fakebin, vivado=False)
    assert main(["build", str(proj), "--until", "hls"]) == 0
    b = proj / "build"
    info = json.loads((b / "build_info.json").read_text())
    assert info["until"] == "hls" and not (b / "edgemoe.bit").exists()
    assert (b / "hls" / "hls" / "impl" / "ip" / "component.xml").is_file()
    assert len(_calls(fakebin[1])) == 1
    _tools(fakebin)
    assert main(["build", str(proj)]) == 0
    assert json.loads((b / "build_info.json").read_text())["until"] == "bitstream"
    assert (b / "edgemoe.bit").is_file()
    # a csim library in build/ (Project.compile's cache) is left alone
    (b / "libedgemoe_csim_x.so").write_bytes(b"x")
    assert main(["build", str(proj), "--until", "hls"]) == 0
    assert (b / "libedgemoe_csim_x.so").exists()
    assert not (b / "edgemoe.bit").exists(), "an HLS-only rebuild must not keep the old bitstream"


# ---- build: a tool fails midway ------------------------------------------------------------------
def _assert_nothing_complete(b: Path):
    assert not (b / "build_info.json").exists()
    assert not (b / "edgemoe.bit").exists() and not (b / "edgemoe.hwh").exists()
    assert not list(b.glob(".staging-*"))
    assert (b / "last_failed" / "FAILED.txt").is_file()


@needs_tclsh
@pytest.mark.parametrize("fail", ["hls", "vivado_partial", "impl"])
def test_build_fails_midway(proj, fakebin, monkeypatch, capsys, fail):
    _tools(fakebin)
    monkeypatch.setenv("FAKE_FAIL", fail)
    assert main(["build", str(proj)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("edgemoe: error: step ") and "failed" in err
    assert ("v++" if fail == "hls" else "vivado") in err.splitlines()[0]
    b = proj / "build"
    _assert_nothing_complete(b)
    logs = b / "last_failed" / "logs"
    if fail == "hls":
        assert "fake failure" in (logs / "hls.log").read_text()
    if fail == "vivado_partial":
        assert "fake crash" in err  # the log's tail is shown
        assert (b / "last_failed" / "edgemoe.bit.incomplete").is_file()
    # packaging after a failed build: no bitstream
    pm_out = proj.parent / "pkg"
    assert main(["package", str(proj), "-o", str(pm_out)]) == 0
    pm = json.loads((pm_out / "package_manifest.json").read_text())
    assert pm["bitstream"]["present"] is False and "edgemoe.bit" not in pm["files"]


@needs_tclsh
def test_failed_rebuild_keeps_previous_build(proj, fakebin, monkeypatch):
    _tools(fakebin)
    assert main(["build", str(proj)]) == 0
    b = proj / "build"
    before = (b / "build_info.json").read_text()
    bit = (b / "edgemoe.bit").read_bytes()
    monkeypatch.setenv("FAKE_FAIL", "vivado_partial")
    assert main(["build", str(proj)]) == 2
    assert (b / "build_info.json").read_text() == before and (b / "edgemoe.bit").read_bytes() == bit
    assert (b / "last_failed" / "FAILED.txt").is_file()


# ---- package -------------------------------------------------------------------------------------
def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_package_without_bitstream(proj, tmp_path, capsys):
    pkg = tmp_path / "out" / "pkg"
    assert main(["package", str(proj), "-o", str(pkg)]) == 0
    assert "no bitstream" in capsys.readouterr().out
    tgz = tmp_path / "out" / "pkg.tar.gz"
    assert pkg.is_dir() and tgz.is_file()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["pkg", "pkg.tar.gz"]  # no temporaries
    pm = json.loads((pkg / "package_manifest.json").read_text())
    files = pm["files"]
    for f in ("data/weights.bin", "data/manifest.json", "data/input.npy", "data/input_pixels.bin",
              "data/golden_out_task0.bin", "data/golden_fixed_task0.npy", "data/golden_float_task1.npy",
              "run.sh", "runtime/edgemoe/host/__init__.py", "runtime/edgemoe/host/remote.py",
              "runtime/edgemoe/errors.py", "runtime/edgemoe/io.py", "runtime/edgemoe/options.py",
              "runtime/edgemoe/kernel_interface.py"):
        assert f in files, f
    assert "package_manifest.json" not in files and "edgemoe.bit" not in files
    on_disk = sorted(p.relative_to(pkg).as_posix() for p in pkg.rglob("*") if p.is_file())
    assert on_disk == sorted(list(files) + ["package_manifest.json", ".edgemoe"])   # + edgemoe's marker
    # the model's identity, copied from the project manifest
    assert pm["identity"] == json.loads((proj / "data" / "manifest.json").read_text())["identity"]
    assert pm["identity"]["weights_sha256"] == _sha(proj / "data" / "weights.bin")
    kid = next(a for a in pm["kernel"]["args"] if a["name"] == "kernel_id")
    assert kid["kind"] == "output" and kid["hex"] == "0x60" and kid["words"] == 1
    # modes follow the umask (022 here): readable by all, run.sh executable
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(pkg.stat().st_mode) == 0o777 & ~mask
    assert stat.S_IMODE((pkg / "data" / "weights.bin").stat().st_mode) == 0o666 & ~mask
    assert stat.S_IMODE((pkg / "run.sh").stat().st_mode) == 0o777 & ~mask
    assert stat.S_IMODE(tgz.stat().st_mode) == 0o666 & ~mask
    for rel, rec in files.items():
        assert _sha(pkg / rel) == rec["sha256"] and (pkg / rel).stat().st_size == rec["size"], rel
    assert _sha(pkg / "data" / "weights.bin") == _sha(proj / "data" / "weights.bin")
    assert verify_package(pkg) == []
    bs = pm["bitstream"]
    assert bs["present"] is False and "0xA0000000" in bs["note"] and "edgemoe build" in bs["note"]
    assert pm["kernel"]["base_address"] == "0xA0000000"
    assert [a["hex"] for a in pm["kernel"]["args"]][:2] == ["0x10", "0x1C"]
    assert pm["board"]["name"] == "zcu104" and pm["board"]["board_part"] == "xilinx.com:zcu104:part0:1.1"
    run = pkg / "run.sh"
    assert os.access(run, os.X_OK) and 'edgemoe-host run . "$@"' in run.read_text()
    # tarball round trip: same files, same bytes, run.sh still executable
    ex = tmp_path / "extract"
    with tarfile.open(tgz) as tf:
        names = tf.getnames()
        assert all(n == "pkg" or n.startswith("pkg/") for n in names) and "pkg/.edgemoe" in names
        assert tf.getmember("pkg/run.sh").mode == 0o777 & ~mask
        assert tf.getmember("pkg/data/weights.bin").mode == 0o666 & ~mask
        tf.extractall(ex)
    assert verify_package(ex / "pkg") == []
    assert (ex / "pkg" / "package_manifest.json").read_bytes() == (pkg / "package_manifest.json").read_bytes()
    assert os.access(ex / "pkg" / "run.sh", os.X_OK)
    (pkg / "data" / "weights.bin").write_bytes(b"tampered")
    assert verify_package(pkg) == ["data/weights.bin"]


def _err_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_package_refuses_existing(proj, tmp_path, capsys):
    pkg = tmp_path / "pkg"
    tgz = tmp_path / "pkg.tar.gz"
    pkg.mkdir()
    (pkg / "keep.txt").write_text("mine")
    # a user's folder: refused, with --force too, and left as it was
    for force in ([], ["--force"]):
        assert main(["package", str(proj), "-o", str(pkg), *force]) == 2
        err = _err_line(capsys)
        assert f"-o {pkg}" in err and "not made by edgemoe" in err, err
        assert sorted(p.name for p in pkg.iterdir()) == ["keep.txt"] and (pkg / "keep.txt").read_text() == "mine"
        assert not tgz.exists()
    # a user's file in the folder's place: refused, with --force too
    shutil.rmtree(pkg)
    pkg.write_text("my notes")
    assert main(["package", str(proj), "-o", str(pkg), "--force"]) == 2
    assert "not a folder" in _err_line(capsys) and pkg.read_text() == "my notes"
    pkg.unlink()
    # a tarball edgemoe did not make, in the tarball's place: refused, with --force too
    tgz.write_bytes(b"old")
    for force in ([], ["--force"]):
        assert main(["package", str(proj), "-o", str(pkg), *force]) == 2
        assert f"{tgz}: exists and is not a package tarball edgemoe made" in _err_line(capsys)
        assert not pkg.exists() and tgz.read_bytes() == b"old"
    # a tarball of other folders (members outside pkg/): refused as well
    tgz.unlink()
    other = tmp_path / "other"
    other.mkdir()
    (other / ".edgemoe").write_text("{}")
    with tarfile.open(tgz, "w:gz") as tf:
        tf.add(other, arcname="pkg")
        tf.add(other / ".edgemoe", arcname="elsewhere/.edgemoe")
    mine = tgz.read_bytes()
    assert main(["package", str(proj), "-o", str(pkg), "--force"]) == 2
    assert "not a package tarball edgemoe made" in _err_line(capsys) and tgz.read_bytes() == mine
    tgz.unlink()
    # its own package: without --force refused, with --force replaced (folder and tarball)
    assert main(["package", str(proj), "-o", str(pkg)]) == 0
    first = json.loads((pkg / "package_manifest.json").read_text())["created"]
    (pkg / "extra.txt").write_text("stale")
    assert main(["package", str(proj), "-o", str(pkg)]) == 2
    assert "--force" in _err_line(capsys)
    assert main(["package", str(proj), "-o", str(pkg), "--force"]) == 0
    assert verify_package(pkg) == [] and tarfile.is_tarfile(tgz) and not (pkg / "extra.txt").exists()
    assert json.loads((pkg / "package_manifest.json").read_text())["created"] >= first
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith((".pkg", "pkg"))) == ["pkg", "pkg.tar.gz"]
    # a package folder alone (its tarball removed) is replaced; a tarball alone (folder removed) too
    tgz.unlink()
    assert main(["package", str(proj), "-o", str(pkg), "--force"]) == 0 and tgz.is_file()
    shutil.rmtree(pkg)
    assert main(["package", str(proj), "-o", str(pkg), "--force"]) == 0 and verify_package(pkg) == []


def test_package_checks_project(proj, tmp_path, capsys):
    assert main(["package", str(tmp_path / "nothing"), "-o", str(tmp_path / "p1")]) == 2
    (proj / "data" / "golden_out_task0.bin").write_bytes(b"changed")
    assert main(["package", str(proj), "-o", str(tmp_path / "p2")]) == 2
    assert "data/golden_out_task0.bin differs from the project's manifest" in capsys.readouterr().err
    assert not (tmp_path / "p2").exists() and not (tmp_path / "p2.tar.gz").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


@pytest.mark.parametrize("name", ["weights.bin", "heads.npz", "input.npy"])
def test_package_names_an_edited_data_file(proj, tmp_path, capsys, name):
    """Every data file is checked against the sha256 `generate` recorded: one byte changed in one of
    them is named, with both hashes, and nothing is written."""
    f = proj / "data" / name
    want = _sha(f)
    b = bytearray(f.read_bytes())
    b[len(b) // 2] ^= 0x01   # same size, other bytes
    f.write_bytes(bytes(b))
    assert main(["package", str(proj), "-o", str(tmp_path / "pkg")]) == 2
    err = _err_line(capsys)
    assert f"data/{name} differs from the project's manifest (sha256 {_sha(f)[:16]}..., manifest {want[:16]}...)" \
        in err and "generate it again" in err, err
    assert not (tmp_path / "pkg").exists() and not (tmp_path / "pkg.tar.gz").exists()
    f.unlink()
    assert main(["package", str(proj), "-o", str(tmp_path / "pkg")]) == 2
    assert f"data/{name} is missing" in _err_line(capsys)


def test_project_data_files_are_recorded(proj):
    """generate records sha256 + size of every data file (manifest.json aside); write_heads of the
    project's own heads.npz records the new file (a sanctioned rewrite), an edit by hand does not."""
    from edgemoe.project_files import verify_data
    from edgemoe.codegen.pack_heads import write_heads
    m = json.loads((proj / "data" / "manifest.json").read_text())
    on_disk = sorted(p.name for p in (proj / "data").iterdir() if p.name != "manifest.json")
    assert sorted(m["data_files"]) == on_disk and "weights.bin" in on_disk and "heads.npz" in on_disk
    for name, rec in m["data_files"].items():
        assert rec == dict(sha256=_sha(proj / "data" / name), size=(proj / "data" / name).stat().st_size)
    assert verify_data(proj) == on_disk
    write_heads(proj)   # rebuilt from the project's source model: its record follows
    assert verify_data(proj) == on_disk


@needs_tclsh
def test_package_with_bitstream(proj, fakebin, tmp_path, capsys):
    _tools(fakebin)
    assert main(["build", str(proj)]) == 0
    pkg = tmp_path / "pkg"
    assert main(["package", str(proj), "-o", str(pkg)]) == 0
    pm = json.loads((pkg / "package_manifest.json").read_text())
    assert pm["bitstream"]["present"] is True and pm["bitstream"]["source"] == "edgemoe build"
    for f in ("edgemoe.bit", "edgemoe.hwh", "build_info.json"):
        assert f in pm["files"]
        assert _sha(pkg / f) == _sha(proj / "build" / f)
    assert verify_package(pkg) == []
    # a bitstream changed after the build is refused
    (proj / "build" / "edgemoe.bit").write_bytes(b"other")
    capsys.readouterr()
    assert main(["package", str(proj), "-o", str(tmp_path / "pkg2")]) == 2
    assert "differs" in capsys.readouterr().err
    # a lone .bit without its .hwh (and no build record) is an unfinished build
    (proj / "build" / "build_info.json").unlink()
    (proj / "build" / "edgemoe.hwh").unlink()
    assert main(["package", str(proj), "-o", str(tmp_path / "pkg3")]) == 2


def test_run_sh_calls_edgemoe_host(proj, tmp_path, monkeypatch):
    pkg = tmp_path / "pkg"
    assert main(["package", str(proj), "-o", str(pkg)]) == 0
    b = tmp_path / "bin"
    b.mkdir()
    _write_exe(b / "edgemoe-host", '#!/bin/sh\necho "cwd=$(pwd) args=$*"\n')
    r = subprocess.run(["sh", str(pkg / "run.sh"), "--task", "1"], capture_output=True, text=True, timeout=30,
                       cwd=str(tmp_path), env=dict(os.environ, PATH=f"{b}:{SYS_PATH}"))
    assert r.returncode == 0 and r.stdout.strip() == f"cwd={pkg} args=run . --task 1"
    r = subprocess.run(["sh", str(pkg / "run.sh")], capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, PATH=SYS_PATH))
    if not (pkg / "runtime" / "edgemoe" / "host" / "__main__.py").exists():
        assert r.returncode == 127 and "edgemoe-host not found" in r.stderr


def test_package_takes_the_register_map_from_the_vitis_driver_header(tmp_path):
    """A build's x<top>_hw.h (what Vitis generates) overrides the layout rule in the package."""
    import json as _json

    from edgemoe.boards.package import package
    from edgemoe.codegen.generate import generate
    proj = tmp_path / "proj"
    generate(proj, preset="micro", board="zcu104")
    hdr = proj / "build" / "hls" / "impl" / "misc" / "drivers" / "edgemoe_top_v1_0" / "src" / "xedgemoe_top_hw.h"
    hdr.parent.mkdir(parents=True)
    regs = {"PIXELS": 0x20, "WEIGHTS": 0x2C, "SCRATCH": 0x38, "OUT": 0x44, "N_IMAGES": 0x50, "TASK": 0x58,
            "RELOAD": 0x60, "TAP_ID": 0x68, "KERNEL_ID": 0x70, "WEIGHTS1": 0x78, "WEIGHTS2": 0x84, "WEIGHTS3": 0x90}
    lines = ["#define XEDGEMOE_TOP_CONTROL_ADDR_AP_CTRL 0x00"]
    for name, off in regs.items():
        bits = 64 if name.startswith(("PIXELS", "WEIGHTS", "SCRATCH", "OUT")) else 32
        lines += [f"#define XEDGEMOE_TOP_CONTROL_ADDR_{name}_DATA 0x{off:x}",
                  f"#define XEDGEMOE_TOP_CONTROL_BITS_{name}_DATA {bits}"]
        if name == "KERNEL_ID":   # an output scalar: its ap_vld word follows
            lines.append(f"#define XEDGEMOE_TOP_CONTROL_ADDR_{name}_CTRL 0x{off + 4:x}")
    hdr.write_text("\n".join(lines) + "\n")
    pm = package(proj, tmp_path / "pkg")
    got = {a["name"].upper(): a["offset"] for a in pm["kernel"]["args"]}
    assert got == regs
    assert "xedgemoe_top_hw.h" in pm["kernel"]["register_map_source"]
    on_disk = _json.loads((tmp_path / "pkg" / "package_manifest.json").read_text())
    assert on_disk["kernel"]["args"] == pm["kernel"]["args"]
