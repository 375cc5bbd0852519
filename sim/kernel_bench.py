"""Kernel-level RTL simulation of a Vitis-generated top (cocotb bench ``edgemoe.sim.benches.kernel_top``).

The bench plays the host: AXI-Lite master on ``s_axi_control`` with the register map parsed from the
Vitis driver header ``x<top>_hw.h``, one AXI RAM per ``m_axi_<bundle>`` port (all sharing one memory,
like DDR on the board), arguments written, ap_start, ap_done polled under a cycle limit, outputs read
back and compared here with the expected bytes.

    from edgemoe.sim.kernel_bench import Buffer, run_kernel, run_project_kernel
    r = run_kernel("mytop", "icarus", rtl_dir="sol/impl/verilog",
                   buffers=[Buffer("src", data=b"..."), Buffer("dst", size=64, expected=b"...")],
                   scalars={"addend": 5})
    r["mismatches"], r["cycles"]

``run_project_kernel(project_dir, rtl_dir, simulator)`` does this for a project written by
``edgemoe generate`` (buffers from its data/manifest.json, expected output golden_out_task{t}.bin).
"""
from __future__ import annotations

import json
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from edgemoe.errors import EdgeMoeError
from edgemoe.register_map import RegisterMap, parse_register_map

from .build_cache import default_build_root
from .runner import DEFAULT_TIMEOUT, _log_tail, check_rtl_dir, read_xunit, run_bench
from .tools import require_simulator

BENCH_MODULE = "edgemoe.sim.benches.kernel_top"
BASE_ADDR = 0x4_0000_0000          # above 4 GiB: the high word of every pointer matters
ALIGN = 0x1000
OUTPUT_FILL = 0xA5                 # output buffers start with this pattern (untouched words show up)


# ---- the Vitis driver header (its register map: edgemoe/register_map.py, re-exported here) --------------
def find_driver_header(rtl_dir, top: str) -> Path:
    """x<top>_hw.h under rtl_dir, else under its parent or grandparent (Vitis: <sol>/impl/verilog and
    <sol>/impl/misc/drivers/<top>_v1_0/src)."""
    name = f"x{top}_hw.h"
    d = Path(rtl_dir).resolve()
    for base in (d, d.parent, d.parent.parent):
        hits = sorted(base.rglob(name))
        if hits:
            return hits[0]
    raise EdgeMoeError(f"no Vitis driver header {name} in {d} or the two folders above it "
                       "(Vitis writes it to <solution>/impl/misc/drivers/<top>_v1_0/src)")


def find_bundles(top_file, top: str) -> list:
    """The m_axi bundle names of module ``top`` (ports m_axi_<bundle>_ARVALID / _AWVALID)."""
    text = Path(top_file).read_text(errors="replace")
    m = re.search(rf"\bmodule\s+{re.escape(top)}\b(.*?)\bendmodule\b", text, re.S)
    body = m.group(1) if m else text
    return sorted(set(re.findall(r"\bm_axi_(\w+?)_(?:AR|AW)VALID\b", body, re.I)))


# ---- buffers ------------------------------------------------------------------------------------------
@dataclass
class Buffer:
    """One pointer argument's memory. ``data`` (bytes) or ``loads`` [(buffer offset, file, file offset,
    length)] give its contents (zeros elsewhere); ``expected`` (bytes, or (file, offset, length)) makes
    it an output that is read back and compared; outputs start filled with 0xA5."""
    arg: str
    size: int = 0
    data: bytes | None = None
    loads: list = field(default_factory=list)
    expected: object = None

    def __post_init__(self):
        if self.data is not None:
            self.size = max(self.size, len(self.data))
        for off, _f, _fo, n in self.loads:
            self.size = max(self.size, int(off) + int(n))
        if self.size <= 0:
            raise EdgeMoeError(f"buffer {self.arg}: size 0")

    def expected_bytes(self) -> bytes | None:
        e = self.expected
        if e is None or isinstance(e, (bytes, bytearray)):
            return e
        f, off, n = e
        with open(f, "rb") as fh:
            fh.seek(int(off))
            return fh.read(int(n))


def manifest_entries(project_dir) -> dict:
    """{name: {"file": Path, "byte_offset", "size"}} from data/manifest.json's buffers and files lists
    (a buffer's byte_offset is its place in its file)."""
    data = Path(project_dir) / "data"
    mf = data / "manifest.json"
    if not mf.is_file():
        raise EdgeMoeError(f"{project_dir} has no data/manifest.json")
    m = json.loads(mf.read_text())
    out = {}
    for e in list(m.get("buffers", [])) + list(m.get("files", [])):
        out[e["name"]] = dict(file=data / e["file"], byte_offset=int(e.get("byte_offset", 0)), size=int(e["size"]))
    return out


def buffer_from_manifest(project_dir, arg: str, entries: list, size: int = 0, expected: str | None = None,
                         place: str = "file") -> Buffer:
    """A Buffer for ``arg`` holding manifest entries (by name; a file name such as "weights.bin" stands
    for every entry in that file). place="file": each entry sits at its byte offset (the file is the
    buffer's image, as weights.bin is); place="packed": entries one after the other from offset 0.
    ``expected``: the entry holding the expected result (makes the buffer an output)."""
    if place not in ("file", "packed"):
        raise EdgeMoeError(f"place must be 'file' or 'packed', not {place!r}")
    table = manifest_entries(project_dir)
    loads, at = [], 0
    for name in entries:
        hits = [(n, e) for n, e in table.items() if n == name or e["file"].name == name]
        if not hits:
            raise EdgeMoeError(f"{project_dir}: no buffer or file {name!r} in data/manifest.json")
        for _, e in hits:
            dst = e["byte_offset"] if place == "file" else at
            loads.append((dst, str(e["file"]), e["byte_offset"], e["size"]))
            at += e["size"]
    exp = None
    if expected is not None:
        if expected not in table:
            raise EdgeMoeError(f"{project_dir}: no {expected!r} in data/manifest.json")
        e = table[expected]
        exp = (str(e["file"]), e["byte_offset"], e["size"])
        size = max(size, e["size"])
    return Buffer(arg, size=size, loads=loads, expected=exp)


def project_kernel_inputs(project_dir, task: int = 0) -> tuple:
    """(buffers, scalars) of one image through the edgemoe_top kernel of a generated project."""
    m = json.loads((Path(project_dir) / "data" / "manifest.json").read_text())
    wb = int(m["word_bytes"])
    sz = m["sizes"]
    bufs = [buffer_from_manifest(project_dir, "pixels", ["input_pixels"], sz["pix_words"] * wb),
            buffer_from_manifest(project_dir, "weights", ["weights.bin"], sz["weight_words"] * wb),
            Buffer("scratch", size=sz["scratch_words"] * wb),
            buffer_from_manifest(project_dir, "out", [], sz["out_words"] * wb, expected=f"golden_out_task{task}")]
    scalars = dict(n_images=1, task=int(task), reload=1, tap_id=int(m.get("tap_none", -1)))
    return bufs, scalars


# ---- running ------------------------------------------------------------------------------------------
def _compare(got: bytes, want: bytes, word: int) -> dict:
    n = len(want) // word
    bad = [i for i in range(n) if got[i * word:(i + 1) * word] != want[i * word:(i + 1) * word]]
    tail = len(want) % word
    if tail and got[n * word:len(want)] != want[n * word:]:
        bad.append(n)
    first = None
    if bad:
        i = bad[0]
        first = dict(word=i, got=got[i * word:(i + 1) * word].hex(), expected=want[i * word:(i + 1) * word].hex())
    return dict(bytes=len(want), words=n + (1 if tail else 0), mismatched_words=len(bad), first_mismatch=first)


def run_kernel(top: str, simulator: str, *, rtl_dir=None, sources=None, header=None, buffers=(),
               scalars=None, cycle_limit: int = 1_000_000, word_bytes: int = 4, build_dir=None,
               timeout: float = DEFAULT_TIMEOUT, poll_cycles: int = 16, bundle: str = "control") -> dict:
    """Simulate the top kernel ``top`` once; returns {"done", "cycles", "mismatches", "outputs": {arg: {...}},
    "simulator", "seconds", "args": {name: value}, "bundles", "header"}.

    sources: its Verilog files (default: the folder under ``rtl_dir`` that defines ``top``).
    header: x<top>_hw.h (default: found near ``rtl_dir``, or beside the sources).
    buffers: :class:`Buffer` per pointer argument; scalars: {argument: int}. Every argument in the
    header must be given but the output scalars, which are read after ap_done ("outputs_read": {name: int}).
    A kernel that does not finish in ``cycle_limit`` cycles raises EdgeMoeError.
    """
    info = require_simulator(simulator)
    if sources is None:
        if rtl_dir is None:
            raise EdgeMoeError("run_kernel needs rtl_dir or sources")
        sources = check_rtl_dir(rtl_dir, [top])[top]
    sources = [Path(s) for s in sources]
    if header is None:
        header = find_driver_header(rtl_dir if rtl_dir is not None else sources[0].parent, top)
    regmap = parse_register_map(header, top, bundle)
    top_file = next((s for s in sources if re.search(rf"\bmodule\s+{re.escape(top)}\b", s.read_text(errors="replace"))),
                    None)
    if top_file is None:
        raise EdgeMoeError(f"no module {top} in {', '.join(str(s) for s in sources)}")
    bundles = find_bundles(top_file, top)
    scalars = dict(scalars or {})
    buffers = list(buffers)
    given = [b.arg.lower() for b in buffers] + [k.lower() for k in scalars]
    unknown = [a for a in given if a not in regmap.args]
    missing = [a for a in regmap.args if a not in given and a not in regmap.outputs]
    if unknown or missing:
        raise EdgeMoeError(f"{top}: arguments do not match the driver header {header} "
                           f"(header has {', '.join(regmap.args) or 'none'}; "
                           f"unknown: {', '.join(unknown) or 'none'}; not given: {', '.join(missing) or 'none'})")
    if buffers and not bundles:
        raise EdgeMoeError(f"{top} has pointer arguments but no m_axi_<bundle> ports in {top_file}")

    root = Path(build_dir) if build_dir is not None else default_build_root()
    root.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".kernel-{top}-", dir=root))
    try:
        addr = BASE_ADDR
        args, loads, fills, dumps, layout = [], [], [], [], {}
        for b in buffers:
            off, bits = regmap.args[b.arg.lower()]
            layout[b.arg] = addr
            args.append(dict(name=b.arg.lower(), offset=off, bits=bits, value=addr))
            if b.data is not None:
                f = stage / f"in_{b.arg}.bin"
                f.write_bytes(bytes(b.data))
                loads.append(dict(addr=addr, file=str(f), offset=0, length=len(b.data)))
            for boff, f, foff, n in b.loads:
                loads.append(dict(addr=addr + int(boff), file=str(Path(f).resolve()), offset=int(foff), length=int(n)))
            if b.expected is not None:
                fills.append(dict(addr=addr, length=b.size, byte=OUTPUT_FILL))
                dumps.append(dict(name=b.arg, addr=addr, length=b.size))
            addr += (b.size + ALIGN - 1) // ALIGN * ALIGN + ALIGN
        for k, v in scalars.items():
            off, bits = regmap.args[k.lower()]
            args.append(dict(name=k.lower(), offset=off, bits=bits, value=int(v) & ((1 << bits) - 1)))
        reads = [dict(name=n, offset=regmap.args[n][0]) for n in sorted(regmap.outputs) if n not in scalars]
        job = dict(top=top, control=f"s_axi_{bundle}", bundles=bundles, regs=regmap.regs(), args=args, loads=loads,
                   fills=fills, dumps=dumps, reads=reads, cycle_limit=int(cycle_limit), poll_cycles=int(poll_cycles),
                   clock_ns=10)
        job_file = stage / "kernel_job.json"
        job_file.write_text(json.dumps(job, indent=1))
        env = dict(EDGEMOE_KERNEL_JOB=str(job_file), EDGEMOE_KERNEL_OUT="{run}", EDGEMOE_RESULT="{run}/result.json")
        what = f"kernel {top} on {info.name}"
        rc, run, seconds, cached = run_bench(top, sources, BENCH_MODULE, info, env, root, name=f"kernel-{top}",
                                             key_extra=dict(kind="kernel"), timeout=timeout, what=what)
        _, fails = read_xunit(run / "results.xml")
        res = None
        if (run / "result.json").is_file():
            res = json.loads((run / "result.json").read_text())
        if fails or rc != 0 or res is None or res.get("error") or not res.get("done"):
            why = (res or {}).get("error") or "; ".join(fails) or f"the bench wrote no result (exit code {rc})"
            tail = "" if (res or {}).get("error") or fails else "\n" + _log_tail(run / "sim.log")
            raise EdgeMoeError(f"{what}: {why}; log: {run / 'sim.log'}{tail}")
        outputs, total = {}, 0
        for b in buffers:
            want = b.expected_bytes()
            if want is None:
                continue
            got = Path(res["dumps"][b.arg]).read_bytes()
            c = _compare(got, want, word_bytes)
            c["address"] = layout[b.arg]
            outputs[b.arg] = c
            total += c["mismatched_words"]
        return dict(done=True, cycles=res["cycles"], polls=res["polls"], mismatches=total, outputs=outputs,
                    simulator=info.name, simulator_version=info.version, seconds=round(seconds, 3),
                    build_cached=cached, args={a["name"]: a["value"] for a in args}, bundles=bundles,
                    header=str(header), register_map={k: v[0] for k, v in regmap.args.items()},
                    idle_after=bool(res.get("ctrl_after", 0) & 0x4), log=str(run / "sim.log"),
                    outputs_read=dict(res.get("reads", {})))
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def run_project_kernel(project_dir, rtl_dir, simulator: str, task: int = 0, **kw) -> dict:
    """One image through a generated project's kernel RTL (Vitis output in ``rtl_dir``), compared with
    the project's golden_out_task{task}.bin."""
    from edgemoe.kernel_interface import CONFIG_NAME, read_kernel_id
    m = json.loads((Path(project_dir) / "data" / "manifest.json").read_text())
    buffers, scalars = project_kernel_inputs(project_dir, task)
    r = run_kernel(m.get("top", "edgemoe_top"), simulator, rtl_dir=rtl_dir, buffers=buffers, scalars=scalars, **kw)
    if "kernel_id" in r["outputs_read"]:  # the ID register after the run: the one the project's header says
        want = read_kernel_id((Path(project_dir) / "src" / CONFIG_NAME).read_text())
        r["kernel_id"] = dict(read=f"0x{r['outputs_read']['kernel_id']:08X}", expected=f"0x{want or 0:08X}",
                              ok=r["outputs_read"]["kernel_id"] == want)
        r["mismatches"] += 0 if r["kernel_id"]["ok"] else 1
    return r


__all__ = ["RegisterMap", "parse_register_map", "find_driver_header", "find_bundles", "Buffer", "run_kernel",
           "run_project_kernel", "project_kernel_inputs", "buffer_from_manifest", "manifest_entries"]
