"""``edgemoe build DIR [--until hls|bitstream]``: Vitis HLS, then Vivado, on a generated project.

Steps (run from DIR):

* ``hls``: the kernel exported as a Vivado IP: ``v++ -c --mode hls --config hls_config_ip.cfg
  --work_dir <w>/hls`` (Vitis 2023.2+), else ``vitis_hls -f vivado/hls_ip.tcl -tclargs <w>/hls``;
* ``bitstream``: ``vivado -mode batch -source vivado/build_bd.tcl -tclargs <w>/hls <w> JOBS``:
  block design, synthesis, implementation, ``edgemoe.bit`` and ``edgemoe.hwh``.

Everything is written into a staging folder ``DIR/build/.staging-*`` and moved into ``DIR/build/``
only when every requested step succeeded; ``DIR/build/build_info.json`` (written last) marks a
finished build. A failed run leaves its logs in ``DIR/build/last_failed/`` (with FAILED.txt) and
removes nothing of an earlier finished build. Without the tools the command says which one is
missing, prints the exact commands to run on a machine that has them, and exits with code 2.
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from edgemoe.errors import EdgeMoeError, ToolMissingError
from edgemoe.io import sha256_file

from edgemoe.kernel_interface import kernel_record
from edgemoe.project_files import BD_NAME, BD_TCL, BUILD_DIR, BUILD_INFO, HLS_IP_CFG, HLS_IP_TCL, VIVADO_DIR, \
    finished_build, kernel_interface, read_manifest

FAILED_DIR = "last_failed"
UNTIL = ("hls", "bitstream")
# what a finished build moves into DIR/build (replacing what an earlier build left there)
BUILD_ITEMS = ("hls", "vivado", "reports", "logs", f"{BD_NAME}.bit", f"{BD_NAME}.hwh", f"{BD_NAME}.xsa")
EXIT_MISSING = 2


def _jobs() -> int:
    try:
        return max(1, int(os.environ.get("EDGEMOE_VIVADO_JOBS", "")))
    except ValueError:
        return max(1, os.cpu_count() or 1)


def hls_command(tool: str, work: str) -> list:
    """argv of the HLS IP export with ``tool`` (v++ or vitis_hls), writing into ``work``."""
    if Path(tool).name == "vitis_hls":
        return [tool, "-f", f"{VIVADO_DIR}/{HLS_IP_TCL}", "-tclargs", work]
    return [tool, "-c", "--mode", "hls", "--config", HLS_IP_CFG, "--work_dir", work]


def vivado_command(tool: str, ip_repo: str, out: str, jobs: int, log: str) -> list:
    return [tool, "-mode", "batch", "-nojournal", "-log", log, "-source", f"{VIVADO_DIR}/{BD_TCL}",
            "-tclargs", ip_repo, out, str(jobs)]


def manual_commands(project_dir, until: str = "bitstream") -> str:
    """The commands to run on a machine with Vitis and Vivado (what ``edgemoe build`` would run)."""
    d = shlex.quote(str(Path(project_dir).resolve()))
    lines = [f"# on a machine with Vitis HLS{' and Vivado' if until == 'bitstream' else ''} "
             "(after `source <Xilinx>/Vitis/<version>/settings64.sh`):",
             f"cd {d}",
             f"edgemoe build .{'' if until == 'bitstream' else ' --until hls'}",
             "# or, without edgemoe there (the project folder is self-contained):",
             " ".join(hls_command("v++", "build/hls")) + "    # Vitis 2023.2 and newer",
             "#   older Vitis: " + " ".join(hls_command("vitis_hls", "build/hls"))]
    if until == "bitstream":
        lines.append(" ".join(vivado_command("vivado", "build/hls", "build", 2, "build/vivado.log")))
        lines.append(f"# outputs: build/{BD_NAME}.bit and build/{BD_NAME}.hwh (then: edgemoe package . -o PKG)")
    return "\n".join(lines)


def find_tools(until: str, path: str | None = None) -> tuple:
    """({step: tool path}, [missing tool descriptions]) for the steps up to ``until``."""
    tools, missing = {}, []
    hls = shutil.which("v++", path=path) or shutil.which("vitis_hls", path=path)
    if hls:
        tools["hls"] = hls
    else:
        missing.append("Vitis HLS (v++ or vitis_hls)")
    if until == "bitstream":
        viv = shutil.which("vivado", path=path)
        if viv:
            tools["bitstream"] = viv
        else:
            missing.append("Vivado (vivado)")
    return tools, missing


class ToolsMissing(ToolMissingError):
    def __init__(self, message: str, commands: str):
        super().__init__(message)
        self.commands = commands


def _run(argv, cwd: Path, log: Path, quiet: bool) -> int:
    """Run one tool, its output into ``log`` (and to stdout unless quiet); returns the exit code."""
    with open(log, "w") as fh:
        fh.write("$ " + " ".join(shlex.quote(a) for a in argv) + "\n")
        fh.flush()
        try:
            p = subprocess.Popen(argv, cwd=str(cwd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, text=True, errors="replace")
        except OSError as e:
            fh.write(f"cannot start: {e}\n")
            return 127
        for line in p.stdout:
            fh.write(line)
            if not quiet:
                sys.stdout.write(line)
        return p.wait()


def _tail(path: Path, n: int = 15) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join("    " + ln for ln in lines[-n:])


def _ensure_scripts(root: Path, write_scripts=None) -> None:
    """Write the Vivado/IP scripts with ``write_scripts(DIR)`` when missing (projects from before they
    existed) or out of date; without ``write_scripts``, a project that needs them is an error."""
    vdir = root / VIVADO_DIR
    cfg, ipcfg = root / "hls_config.cfg", root / HLS_IP_CFG
    stale = not ipcfg.is_file() or (cfg.is_file() and cfg.stat().st_mtime > ipcfg.stat().st_mtime)
    if stale or not (vdir / BD_TCL).is_file() or not (vdir / HLS_IP_TCL).is_file():
        if write_scripts is None:
            raise EdgeMoeError(f"{root}: the Vivado / IP export scripts ({VIVADO_DIR}/{BD_TCL}, {VIVADO_DIR}/{HLS_IP_TCL}, "
                               f"{HLS_IP_CFG}) are missing or older than hls_config.cfg: `edgemoe build` writes them")
        keep = {p: p.read_text() for p in (vdir / BD_TCL, vdir / HLS_IP_TCL) if p.is_file()}
        write_scripts(root)
        for p, text in keep.items():  # a user's edits of the Tcl stay
            p.write_text(text)


def build(project_dir, until: str = "bitstream", quiet: bool = True, path: str | None = None,
          after_hls=None, write_scripts=None) -> dict:
    """Run the steps up to ``until``; returns the build_info dict. Raises :class:`ToolsMissing`
    (before anything is written) when a tool is not on PATH, :class:`EdgeMoeError` when a step fails.

    ``after_hls(work, project=DIR, logs=LOGS)``, when given, checks the finished HLS run in ``work``
    before anything else runs (the command line passes ``edgemoe.codegen.vitis_check``'s; this
    package stays below codegen): it writes what it found into ``LOGS`` and raises
    :class:`EdgeMoeError` to fail the build; a dict it returns is kept in build_info (``after_hls``).
    ``write_scripts(DIR)`` writes the project's Vivado / IP export scripts when they are missing or stale
    (the command line passes ``edgemoe.codegen.vivado_files.write_vivado_files``)."""
    root = Path(project_dir)
    if until not in UNTIL:
        raise EdgeMoeError(f"--until must be one of {', '.join(UNTIL)}, not {until!r}")
    manifest = read_manifest(root)
    tools, missing = find_tools(until, path)
    if missing:
        raise ToolsMissing(f"{' and '.join(missing)} not found on PATH: nothing was built. "
                           f"Run these commands on a machine that has {'them' if len(missing) > 1 else 'it'}:",
                           (f"# Vitis HLS is on this machine: `edgemoe build {root} --until hls` runs that step here\n"
                            if "hls" in tools and until == "bitstream" else "") + manual_commands(root, until))
    _ensure_scripts(root, write_scripts)
    from edgemoe.board_facts import get_board
    board = get_board(manifest["board"]["name"])
    iface = kernel_interface(root, manifest.get("top", "edgemoe_top"))
    out = root / BUILD_DIR
    out.mkdir(exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".staging-", dir=out))
    (stage / "logs").mkdir()
    steps, ok = [], False
    try:
        hls_work = stage / "hls"
        argv = hls_command(tools["hls"], str(hls_work))
        steps.append(_step("hls", argv, root, stage, quiet))
        if not list(hls_work.rglob("component.xml")):
            raise EdgeMoeError(f"{Path(tools['hls']).name} finished but exported no IP (no component.xml under "
                               f"{hls_work}); see the log in {out / FAILED_DIR / 'logs'}")
        checked = None
        if after_hls is not None:
            if not quiet:
                print("[check] the HLS run: burst inference, II, shared units, resources against the estimate", flush=True)
            try:
                checked = after_hls(hls_work, project=root, logs=stage / "logs")
            except EdgeMoeError as e:
                raise EdgeMoeError(f"{e}\nthe HLS run and its logs are in {out / FAILED_DIR}") from None
        if until == "bitstream":
            argv = vivado_command(tools["bitstream"], str(hls_work), str(stage), _jobs(),
                                  str(stage / "logs" / "vivado.log"))
            steps.append(_step("bitstream", argv, root, stage, quiet, log_name="vivado_stdout.log"))
            for f in (f"{BD_NAME}.bit", f"{BD_NAME}.hwh"):
                if not (stage / f).is_file():
                    raise EdgeMoeError(f"vivado finished but wrote no {f}; see the logs in {out / FAILED_DIR / 'logs'}")
        info = dict(format=1, until=until, finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    edgemoe=__import__("edgemoe").__version__, board=board.to_dict(),
                    clock_mhz=manifest.get("clock_mhz"), kernel=kernel_record(board, iface), steps=steps,
                    outputs={f: dict(sha256=sha256_file(stage / f), size=(stage / f).stat().st_size)
                             for f in (f"{BD_NAME}.bit", f"{BD_NAME}.hwh", f"{BD_NAME}.xsa") if (stage / f).is_file()})
        if isinstance(checked, dict):
            info["after_hls"] = checked
        _commit(stage, out, info)
        ok = True
        return info
    finally:
        if not ok and stage.exists():
            failed = out / FAILED_DIR
            shutil.rmtree(failed, ignore_errors=True)
            (stage / "FAILED.txt").write_text("this build did not finish; nothing here is a usable output\n")
            for f in (f"{BD_NAME}.bit", f"{BD_NAME}.hwh"):  # never a bitstream that looks usable
                if (stage / f).exists():
                    (stage / f).rename(stage / (f + ".incomplete"))
            os.replace(stage, failed)


def _step(name: str, argv: list, cwd: Path, stage: Path, quiet: bool, log_name: str | None = None) -> dict:
    log = stage / "logs" / (log_name or f"{name}.log")
    if not quiet:
        print(f"[{name}] " + " ".join(shlex.quote(a) for a in argv), flush=True)
    t0 = time.perf_counter()
    rc = _run(argv, cwd, log, quiet)
    dt = time.perf_counter() - t0
    if rc != 0:
        tail = _tail(log)
        raise EdgeMoeError(f"step {name} failed: {Path(argv[0]).name} exited with code {rc} after {dt:.0f} s; "
                           f"log: {cwd / BUILD_DIR / FAILED_DIR / 'logs' / log.name}" + (f"\n{tail}" if tail else ""))
    return dict(step=name, tool=argv[0], argv=argv, seconds=round(dt, 1), log=f"logs/{log.name}")


def _commit(stage: Path, out: Path, info: dict) -> None:
    """Move a finished staging folder's outputs into ``out``: the old completion marker goes first,
    the new one last, so an interruption never leaves a mix that claims to be complete."""
    (out / BUILD_INFO).unlink(missing_ok=True)
    trash = Path(tempfile.mkdtemp(prefix=".old-", dir=out))
    try:
        for item in BUILD_ITEMS:
            if (out / item).exists() or (out / item).is_symlink():
                os.replace(out / item, trash / item)
        for item in BUILD_ITEMS:
            if (stage / item).exists():
                os.replace(stage / item, out / item)
        tmp = out / (BUILD_INFO + ".partial")
        tmp.write_text(json.dumps(info, indent=1))
        os.replace(tmp, out / BUILD_INFO)
        shutil.rmtree(out / FAILED_DIR, ignore_errors=True)
    finally:
        shutil.rmtree(trash, ignore_errors=True)
    shutil.rmtree(stage, ignore_errors=True)


def build_command(args, after_hls=None, write_scripts=None) -> int:
    try:
        info = build(args.project, until=args.until, quiet=False, after_hls=after_hls, write_scripts=write_scripts)
    except ToolsMissing as e:
        print(f"edgemoe: error: {e}", file=sys.stderr)
        print(e.commands, file=sys.stderr)
        return EXIT_MISSING
    out = Path(args.project) / BUILD_DIR
    if info["until"] == "bitstream":
        print(f"built {out / (BD_NAME + '.bit')} and {out / (BD_NAME + '.hwh')} "
              f"(kernel control at {info['kernel']['base_address']})")
    else:
        print(f"HLS done: the kernel IP is under {out / 'hls'} (continue with `edgemoe build {args.project}`)")
    return 0


__all__ = ["build", "build_command", "manual_commands", "find_tools", "hls_command", "vivado_command",
           "finished_build", "sha256_file", "ToolsMissing", "BUILD_DIR", "BUILD_INFO", "FAILED_DIR"]
