"""The PYNQ host runtime: drive a packaged Edge-MoE kernel on a board (numpy + pynq only, no torch).

    rt = EdgeMoeRuntime("PKG", timeout_s=10)   # checks the sha256 of every file of the package
    rt.program()                               # pynq.Overlay(edgemoe.bit) when the package has one
    rt.open()                                  # pynq.MMIO + pynq.allocate, weights and pointers written
    res = rt.run(task=0)                       # the package's golden input; res.tokens, res.latency_s
    res = rt.run(task=1)                       # a task switch rewrites the task register only
    rt.close()

Every pynq call of this module (what a board stand-in has to provide):
  * ``pynq.Overlay(path_of_bit)`` and its ``ip_dict`` ({instance: {"phys_addr", "addr_range", "type"}})
    -- only when the package has a bitstream;
  * ``pynq.MMIO(base_address, address_range)``, ``.read(offset)`` -> int and ``.write(offset, int)``
    (always a Python int, 32 bits);
  * ``pynq.allocate(shape=(n_bytes,), dtype=numpy.uint8)`` -> a numpy array with ``physical_address``,
    ``sync_to_device()``, ``sync_from_device()`` and ``freebuffer()``;
  * ``pynq.get_rails()`` (PMBus power rails; optional: energy is None without it).

Register protocol (Vitis s_axilite): argument registers from the package's register map, a 64-bit
pointer as two 32-bit words (low word first); ``reload`` = 1 on the first run only; start = write
1 to the control register (bit 0, ap_start); done = bit 1 of the control register, polled until
``timeout_s``.

Kernel identity: ``open()`` first starts the kernel with ``n_images`` = 0, which writes its ID to the
read-only ``kernel_id`` register and returns without touching memory, reads that register and refuses
(one line) a kernel whose ID is not the package's (package_manifest.json "identity": the first 8 hex
digits of its config_hash), before any buffer is allocated or written.

Alongside: host/package_files.py (the manifest, the sha256 of every file, the identity, heads.npz),
host/remote.py (a remote board or emulator: the TCP probe, every pynq call under a deadline),
host/power.py (PMBus rails for the energy), host/heads.py (the task heads on the CPU).
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from edgemoe.errors import EdgeMoeError, ToolMissingError
from edgemoe.kernel_interface import MAX_IMAGES, TAP_NONE
from edgemoe.spec import ModelSpec

from .fixed import FixedFormat
from .heads import run_head
from .package_files import PACKAGE_MANIFEST, expected_kernel_id, load_heads, read_package_manifest, verify_files
from .power import BoardPower
from .remote import check_remote, device_call, select_remote_port

POINTER_ARGS = ("pixels", "weights", "scratch", "out")
SCALAR_ARGS = ("n_images", "task", "reload", "tap_id")
ID_ARG = "kernel_id"     # the kernel's read-only ID register (an output scalar on s_axilite)


def _int(v) -> int:
    return int(v, 0) if isinstance(v, str) else int(v)


class RunResult(SimpleNamespace):
    """One kernel call: ``frames``, ``task``, ``out_bytes`` (one bytes object per frame, as the kernel
    wrote it), ``raw`` [frames, tokens, d] int64 codes, ``tokens`` [frames, tokens, d] float32,
    ``heads`` (list of [C, H, W] or None), ``latency_s`` (per frame, wall clock start..done),
    ``call_s``, ``energy_j`` (per frame or None), ``power_w``, ``notes``."""


class EdgeMoeRuntime:
    def __init__(self, pkg_dir, *, timeout_s: float = 10, verify: bool = True):
        self.pkg = Path(pkg_dir)
        self.pm = read_package_manifest(self.pkg)
        if verify:
            verify_files(self.pkg, self.pm)
        self.timeout_s = float(timeout_s)
        self.notes = []
        self.manifest = json.loads((self.pkg / self.pm.get("data", {}).get("manifest", "data/manifest.json")).read_text())
        m = self.manifest
        self.word_bytes = int(m.get("word_bytes") or int(m["axi_bits"]) // 8)
        self.sizes = {k: int(v) for k, v in m["sizes"].items()}
        self.spec = ModelSpec.from_dict(m["spec"])
        self.act = FixedFormat.parse(m["types"]["act"])
        self.num_tasks = len(self.spec.tasks)
        self._parse_kernel(self.pm["kernel"])
        self.identity, self.kernel_id_expected = expected_kernel_id(self.pkg, self.pm)
        self.heads = load_heads(self.pkg, self.pm, self.notes)
        self.overlay = None
        self.mmio = None
        self.buffers = {}
        self.capacity = 0
        self._pynq = None
        self._regs = {}          # offset -> last value written (only changes are written again)
        self._reload = True      # the first run loads the one-time parameters
        self._pixels_loaded = None
        self._power = None      # BoardPower, on the first run

    # ---- package --------------------------------------------------------------------------------
    def _parse_kernel(self, k: dict) -> None:
        self.kernel = k
        self.base_address = _int(k["base_address"])
        self.address_range = _int(k.get("address_range", 0x10000))
        ctrl = k.get("control", {})
        self.ctrl_offset = _int(ctrl.get("ap_ctrl", 0))
        bits = k.get("control_bits", {})
        self.bit_start = 1 << int(bits.get("ap_start", 0))
        self.bit_done = 1 << int(bits.get("ap_done", 1))
        self.args = {a["name"]: a for a in k.get("args", [])}
        self.extra_weight_ports = [n for n, a in self.args.items()
                                   if re.fullmatch(r"weights\d+", n) and a.get("kind", "pointer") == "pointer"]
        missing = [n for n in POINTER_ARGS + SCALAR_ARGS + (ID_ARG,) if n not in self.args]
        if missing:
            raise EdgeMoeError(f"the register map in {PACKAGE_MANIFEST} lacks argument(s) {', '.join(missing)} "
                               f"(has {', '.join(self.args) or 'none'}): package the project again with this edgemoe")

    @property
    def has_bitstream(self) -> bool:
        return bool(self.pm.get("bitstream", {}).get("present"))

    def pixel_bytes(self) -> bytes:
        """The package's golden input (one image) as the kernel reads it."""
        data = (self.pkg / "data" / "input_pixels.bin").read_bytes()
        want = self.sizes["pix_words"] * self.word_bytes
        if len(data) != want:
            raise EdgeMoeError(f"data/input_pixels.bin has {len(data)} bytes; one image is {want}")
        return data

    def golden_out(self, task: int) -> bytes:
        names = self.manifest.get("golden", {}).get("out") or []
        name = names[task] if task < len(names) else f"golden_out_task{task}.bin"
        return (self.pkg / "data" / name).read_bytes()

    # ---- device ---------------------------------------------------------------------------------
    def _import_pynq(self):
        if self._pynq is None:
            check_remote(self.pkg)   # no board or emulator at PYNQ_REMOTE_DEVICES: one line at once
            try:
                import pynq
            except ImportError as e:
                raise ToolMissingError(f"pynq is not importable ({e}); the host runtime needs it: pip install pynq "
                                       f"(on a PYNQ image it is installed already)") from None
            device_call("connecting to the remote board", select_remote_port, pynq, deadline_s=30)
            self._pynq = pynq
        return self._pynq

    def program(self):
        """Load the package's bitstream with pynq.Overlay and check the kernel's address in it; without
        a bitstream, nothing (the kernel must already be on the board at the manifest's address)."""
        if not self.has_bitstream:
            self.notes.append(f"no bitstream in the package: driving a kernel already loaded at "
                              f"{self.base_address:#x}")
            return None
        pynq = self._import_pynq()
        bit = self.pkg / self.pm["bitstream"].get("bit", "edgemoe.bit")
        ol = device_call(f"pynq.Overlay({bit.name})", pynq.Overlay, str(bit))
        self.overlay = ol
        self._check_overlay(getattr(ol, "ip_dict", {}) or {})
        return ol

    def _check_overlay(self, ip_dict: dict) -> None:
        inst, top = self.kernel.get("instance"), self.kernel.get("top", "edgemoe_top")
        name = inst if inst in ip_dict else None
        if name is None:  # another instance name: match by the HLS core's name in its VLNV type
            found = [k for k, v in ip_dict.items()
                     if f":{top}:" in str(v.get("type", "")) or k.rsplit("/", 1)[-1].startswith(top)]
            name = found[0] if len(found) == 1 else None
        if name is None:
            have = ", ".join(f"{k} ({v.get('type', '?')})" for k, v in ip_dict.items()) or "no IP at all"
            raise EdgeMoeError(f"kernel {inst or top} not found in the overlay's ip_dict; it has: {have}")
        addr = _int(ip_dict[name].get("phys_addr", -1))
        if addr != self.base_address:
            raise EdgeMoeError(f"the overlay puts {name} at {addr:#x} but {PACKAGE_MANIFEST} says "
                               f"{self.base_address:#x}: the bitstream and the package do not belong together")
        rng = ip_dict[name].get("addr_range")
        if rng is not None and _int(rng) < 0x60:
            raise EdgeMoeError(f"the overlay gives {name} only {_int(rng):#x} bytes of registers")

    def open(self, max_images: int = 1):
        """Map the control registers, allocate the buffers, write the weights and the pointers."""
        if self.mmio is not None and max_images <= self.capacity:
            return self
        pynq = self._import_pynq()
        if not 1 <= max_images <= MAX_IMAGES:
            raise EdgeMoeError(f"images per kernel call must be 1..{MAX_IMAGES}, not {max_images}")
        if self.mmio is None:
            self.mmio = device_call(f"pynq.MMIO({self.base_address:#x}, {self.address_range:#x})", pynq.MMIO,
                                    self.base_address, self.address_range)
            try:
                self.check_kernel_id()   # before any buffer is allocated or written
            except BaseException:
                self.mmio = None
                raise
        self._free()
        wb = self.word_bytes
        sizes = dict(pixels=max_images * self.sizes["pix_words"] * wb, weights=self.sizes["weight_words"] * wb,
                     scratch=max(self.sizes["scratch_words"], 1) * wb, out=max_images * self.sizes["out_words"] * wb)
        for name, n in sizes.items():
            self.buffers[name] = device_call(f"pynq.allocate({n} bytes for {name})", pynq.allocate,
                                             shape=(n,), dtype=np.uint8)
        weights = np.fromfile(str(self.pkg / self.pm.get("data", {}).get("weights", "data/weights.bin")), dtype=np.uint8)
        if weights.size != sizes["weights"]:
            raise EdgeMoeError(f"data/weights.bin has {weights.size} bytes; the manifest says {sizes['weights']}")
        self.buffers["weights"][:] = weights
        self.buffers["scratch"][:] = 0
        self.buffers["out"][:] = 0
        for name in ("weights", "scratch", "out"):
            self.buffers[name].sync_to_device()
        self.capacity = max_images
        self._pixels_loaded = None
        self._regs.clear()
        for name in POINTER_ARGS:
            self._write_arg(name, int(self.buffers[name].physical_address))
        for name in self.extra_weight_ports:
            # a design with several weight ports reads the one weights buffer through each of them
            self._write_arg(name, int(self.buffers["weights"].physical_address))
        self._reload = True  # fresh weights buffer: load the one-time parameters again
        return self

    def read_kernel_id(self) -> int:
        """The kernel's ID register, after a call with n_images = 0 (the kernel writes the ID and returns
        without touching memory, so no buffer or pointer is needed)."""
        if self.mmio is None:
            self.open()
        self._write_arg("n_images", 0)
        self._start_and_wait()
        off = _int(self.args[ID_ARG]["offset"])
        return int(device_call(f"reading the kernel's ID register ({ID_ARG} at {off:#x})", self.mmio.read, off,
                               deadline_s=max(self.timeout_s, 5.0))) & 0xFFFFFFFF

    def check_kernel_id(self) -> int:
        """Refuse (one line) a kernel whose ID is not the package's identity; returns the ID."""
        got, want = self.read_kernel_id(), self.kernel_id_expected
        if got != want:
            i = self.identity
            raise EdgeMoeError(f"the kernel on the board has ID 0x{got:08X}, this package was built for 0x{want:08X} "
                               f"(model {i.get('model')}, precision {i.get('precision')}, design {i.get('design')}): "
                               f"program the package's bitstream or package the project the kernel was built from")
        return got

    def _free(self):
        for b in self.buffers.values():
            try:
                b.freebuffer()
            except Exception:  # noqa: BLE001 -- best effort on the way out
                pass
        self.buffers = {}

    def close(self):
        self._free()
        self.mmio = None
        self.capacity = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _write_reg(self, offset: int, value: int) -> None:
        value = int(value) & 0xFFFFFFFF
        if self._regs.get(offset) == value:
            return
        device_call(f"writing the kernel's register {offset:#x}", self.mmio.write, offset, value,
                    deadline_s=max(self.timeout_s, 5.0))
        self._regs[offset] = value

    def _write_arg(self, name: str, value: int) -> None:
        a = self.args[name]
        off, words = _int(a["offset"]), int(a.get("words", 1))
        value = int(value)
        for w in range(words):
            self._write_reg(off + 4 * w, (value >> (32 * w)) & 0xFFFFFFFF)

    def set_task(self, task) -> int:
        """Select the task (its gate): writes the task register if it changed, nothing else."""
        t = self.spec.task_index(task)
        if self.mmio is None:
            self.open()
        self._write_arg("task", t)
        return t

    # ---- power ----------------------------------------------------------------------------------
    def _power_w(self):
        if self._power is None:
            self._power = BoardPower(self._pynq)
            if self._power.note:
                self.notes.append(self._power.note)
        return self._power.watts()

    # ---- run ------------------------------------------------------------------------------------
    def _start_and_wait(self) -> float:
        ctrl = self.ctrl_offset
        mmio = self.mmio
        deadline_s = self.timeout_s
        t0 = time.perf_counter()
        poll_deadline = max(self.timeout_s, 5.0)   # a remote board that stops answering mid-call
        device_call("starting the kernel (MMIO write of ap_start)", mmio.write, ctrl, self.bit_start,
                    deadline_s=poll_deadline)
        status = 0
        pause = 0.0
        while True:
            # a board (or emulator) that goes away mid-run must end the run with one line, not a trace
            status = int(device_call("waiting for ap_done (MMIO read of the control register)", mmio.read, ctrl,
                                     deadline_s=poll_deadline))
            now = time.perf_counter()
            if status & self.bit_done:
                return now - t0
            if now - t0 > deadline_s:
                raise EdgeMoeError(f"kernel did not finish within {self.timeout_s:g} s (last status {status:#x})")
            if now - t0 > 0.002:  # past the first 2 ms: back off up to 1 ms between reads
                pause = min(max(pause * 2, 20e-6), 1e-3)
                time.sleep(pause)

    def run(self, task=0, pixels: bytes | None = None, n_images: int | None = None, tap_id: int = TAP_NONE,
            with_head: bool = True) -> RunResult:
        """One kernel call on ``n_images`` images (``pixels``: their packed bytes; default the package's
        golden input repeated). Returns a :class:`RunResult`."""
        one = self.sizes["pix_words"] * self.word_bytes
        if pixels is None:
            pixels = self.pixel_bytes() * int(n_images or 1)
        if len(pixels) % one or not pixels:
            raise EdgeMoeError(f"pixel data of {len(pixels)} bytes is not a whole number of {one}-byte images")
        n = len(pixels) // one
        if n_images is not None and int(n_images) != n:
            raise EdgeMoeError(f"{n} images of pixel data given for n_images={n_images}")
        self.open(max(n, self.capacity or 1))
        t = self.set_task(task)
        pix = self.buffers["pixels"]
        if self._pixels_loaded != pixels:
            pix[:len(pixels)] = np.frombuffer(pixels, dtype=np.uint8)
            pix.sync_to_device()
            self._pixels_loaded = pixels
        self._write_arg("n_images", n)
        self._write_arg("reload", 1 if self._reload else 0)
        self._write_arg("tap_id", tap_id)
        p0 = self._power_w()
        call_s = self._start_and_wait()
        p1 = self._power_w()
        if self._reload:  # one-time parameters are on chip now; later calls skip the reload
            self._reload = False
            self._write_arg("reload", 0)
        out = self.buffers["out"]
        out.sync_from_device()
        per = self.sizes["out_words"] * self.word_bytes
        flat = np.asarray(out[:n * per], dtype=np.uint8).tobytes()
        frames = [flat[i * per:(i + 1) * per] for i in range(n)]
        T, d = self.spec.output_shape
        raw = np.stack([self.act.raw_from_bytes(f, T * d).reshape(T, d) for f in frames])
        tokens = self.act.to_float(raw).astype(np.float32)
        power = [p for p in (p0, p1) if p is not None]
        power_w = sum(power) / len(power) if power else None
        res = RunResult(frames=n, task=t, task_name=self.spec.tasks[t].name, out_bytes=frames, raw=raw,
                        tokens=tokens, heads=None, latency_s=call_s / n, call_s=call_s, power_w=power_w,
                        energy_j=None if power_w is None else power_w * call_s / n, head_s=None, notes=list(self.notes))
        if with_head and self.heads is not None:
            res.heads, res.head_s = self.run_heads(tokens, t)
        return res

    def run_heads(self, tokens: np.ndarray, task):
        """Task outputs [C, H, W] per frame on the CPU (host/heads.py); (outputs, seconds per frame)."""
        t = self.spec.task_index(task)
        if self.heads is None or t not in self.heads:
            raise EdgeMoeError(f"the package has no head weights for task {t} ({self.spec.tasks[t].name})")
        t0 = time.perf_counter()
        outs = [run_head(x, self.heads[t], self.spec, t) for x in np.asarray(tokens).reshape(-1, *self.spec.output_shape)]
        return outs, (time.perf_counter() - t0) / max(len(outs), 1)


__all__ = ["EdgeMoeRuntime", "RunResult", "verify_files", "PACKAGE_MANIFEST", "MAX_IMAGES"]
