"""``edgemoe emulate``'s server: pynq 4.0's PYNQ.remote gRPC services (protocol in
:mod:`edgemoe.sim.pynq_remote`) on 127.0.0.1 only, each RPC answered from a
:class:`~edgemoe.sim.emulator_board.BoardEmulator` (gpio is not emulated: UNIMPLEMENTED).

Errors reach the client as pynq expects them: the mmio and buffer replies carry a
:class:`~edgemoe.sim.emulator_ddr.RemoteError` in their ``msg`` field (pynq raises RuntimeError with
it); other RPCs abort with its gRPC status; a bug in a handler is logged and returned as INTERNAL.
:class:`Emulator` puts it together: checks the package and the port, gets the kernel
(:func:`~edgemoe.sim.emulator_kernel.kernel_project`), compiles it and serves.
"""
from __future__ import annotations

import json
import shutil
import socket
import sys
import tempfile
import traceback
from concurrent import futures
from pathlib import Path

from edgemoe.errors import EdgeMoeError

from .emulator_board import BoardEmulator
from .emulator_ddr import RemoteError
from .emulator_kernel import CsimKernel, kernel_project

HOST = "127.0.0.1"  # never anything else: the emulator has no authentication
CHUNK = 1 << 20  # streamed replies (pynq's client accepts 4 MiB messages by default)


def _handlers(board: BoardEmulator, log):
    import grpc

    from . import pynq_remote as pr
    M = pr.message

    def ok_msg(resp_cls, **kw):
        return resp_cls(**kw)

    # remote_device
    def existsfile(req, ctx):
        with board.lock:
            return M("remote_device.ExistsFileResponse")(exists=req.file_path in board.files)

    def readfile(req, ctx):
        with board.lock:
            data = board.files.get(req.file_path)
        if data is None:
            raise RemoteError(f"{req.file_path}: no such file on the emulated board", "NOT_FOUND")
        R = M("remote_device.ReadFileResponse")
        for i in range(0, max(len(data), 1), CHUNK):
            yield R(data=data[i:i + CHUNK])

    def writefile(it, ctx):
        path, parts = None, []
        for req in it:
            if path is None:
                path = req.file_path
            elif req.file_path and req.file_path != path:
                raise RemoteError("writefile: one stream, one file", "INVALID_ARGUMENT")
            parts.append(req.data)
        if path is None:
            raise RemoteError("writefile: empty stream", "INVALID_ARGUMENT")
        with board.lock:
            board.write_file(path, b"".join(parts))
        return M("remote_device.WriteFileResponse")()

    def set_bitstream_attrs(req, ctx):
        log(f"bitstream attributes: {req.binfile_name} partial={req.partial}")
        return M("remote_device.SetBitstreamAttrsResponse")(status=True)

    def download(it, ctx):
        n = sum(len(r.buffer) for r in it)
        with board.lock:
            board.bitstream = dict(name="(download)", bytes=n)
            board._reset_kernel()
        log(f"bitstream downloaded ({n} bytes); the kernel is the C simulation")
        return M("remote_device.DownloadResponse")(status=True)

    def set_pl_clk(req, ctx):
        log(f"PL clock {req.i}: {req.clk_mhz} MHz (div {req.div0}/{req.div1}); ignored")
        return M("remote_device.SetPlClkResponse")(status=True)

    def shutdown(req, ctx):
        return M("remote_device.ShutdownResponse")(status=True)

    # mmio (errors go in msg: pynq raises RuntimeError(msg))
    def get_mmio(req, ctx):
        R = M("mmio.GetMmioResponse")
        try:
            with board.lock:
                return R(status=True, mmio_id=board.get_mmio(req.base_addr, req.length))
        except RemoteError as e:
            return R(status=False, msg=str(e))

    def mmio_read(req, ctx):
        R = M("mmio.ReadResponse")
        try:
            with board.lock:
                return R(status=True, data=board.mmio_read(req.mmio_id, req.offset, req.length))
        except RemoteError as e:
            return R(status=False, msg=str(e))

    def mmio_write(req, ctx):
        R = M("mmio.WriteResponse")
        try:
            with board.lock:
                board.mmio_write(req.mmio_id, req.offset, req.data)
            return R(status=True)
        except RemoteError as e:
            return R(status=False, msg=str(e))

    # buffer
    def allocate(req, ctx):
        with board.lock:  # errors as a gRPC status: pynq's allocate does not look at msg
            b = board.ddr.allocate(req.size, req.dtype)
        return M("buffer.AllocateResponse")(buffer_id=b.id)

    def buf_write(it, ctx):
        R = M("buffer.BufferWriteResponse")
        pos = 0
        try:
            for req in it:
                with board.lock:
                    b = board.ddr.get(req.buffer_id)
                    at = req.start if req.end > req.start else pos
                    if at < 0 or at + len(req.data) > len(b.data):
                        raise RemoteError(f"write of {len(req.data)} bytes at {at} overflows buffer "
                                          f"{req.buffer_id} ({len(b.data)} bytes)")
                    b.data[at:at + len(req.data)] = req.data
                    pos = at + len(req.data)
        except RemoteError as e:
            return R(msg=str(e))
        return R()

    def buf_read(req, ctx):
        R = M("buffer.BufferReadResponse")
        with board.lock:
            try:
                b = board.ddr.get(req.buffer_id)
            except RemoteError as e:
                yield R(msg=str(e))
                return
            s, e = (req.start, req.end) if req.end > req.start else (0, len(b.data))
            data = bytes(b.data[max(s, 0):min(e, len(b.data))])
        for i in range(0, max(len(data), 1), CHUNK):
            yield R(data=data[i:i + CHUNK])

    def simple(resp, fn):
        def h(req, ctx):
            try:
                with board.lock:
                    return M(resp)(**(fn(req) or {}))
            except RemoteError as e:
                return M(resp)(msg=str(e))
        return h

    impl = {
        "remote_device.RemoteDevice": dict(existsfile=existsfile, readfile=readfile, writefile=writefile,
                                           set_bitstream_attrs=set_bitstream_attrs, download=download,
                                           set_pl_clk=set_pl_clk, shutdown=shutdown),
        "mmio.Mmio": dict(get_mmio=get_mmio, read=mmio_read, write=mmio_write),
        "buffer.RemoteBuffer": dict(
            allocate=allocate, write=buf_write, read=buf_read,
            freebuffer=simple("buffer.FreeBufferResponse", lambda r: board.ddr.free(r.buffer_id)),
            flush=simple("buffer.FlushResponse", lambda r: board.ddr.get(r.buffer_id) and None),
            invalidate=simple("buffer.InvalidateResponse", lambda r: board.ddr.get(r.buffer_id) and None),
            physical_address=simple("buffer.AddressResponse", lambda r: dict(address=board.ddr.get(r.buffer_id).address)),
            # no user space here: a fixed offset keeps virtual addresses distinct from physical ones
            virtual_address=simple("buffer.AddressResponse",
                                   lambda r: dict(address=0x7F00_0000_0000 + board.ddr.get(r.buffer_id).address)),
            cacheable=simple("buffer.CacheableResponse", lambda r: board.ddr.get(r.buffer_id) and dict(cacheable=True)),
        ),
    }

    def guard(fn, name, streaming_out):
        def status(e):
            return getattr(grpc.StatusCode, getattr(e, "code", "INTERNAL"), grpc.StatusCode.INTERNAL)
        if streaming_out:
            def wrapped(req, ctx):
                try:
                    yield from fn(req, ctx)
                except RemoteError as e:
                    ctx.abort(status(e), str(e))
                except Exception as e:
                    log(f"{name}: internal error\n{traceback.format_exc()}")
                    ctx.abort(grpc.StatusCode.INTERNAL, f"edgemoe emulate: {name}: {e!r}")
        else:
            def wrapped(req, ctx):
                try:
                    return fn(req, ctx)
                except RemoteError as e:
                    ctx.abort(status(e), str(e))
                except Exception as e:
                    log(f"{name}: internal error\n{traceback.format_exc()}")
                    ctx.abort(grpc.StatusCode.INTERNAL, f"edgemoe emulate: {name}: {e!r}")
        return wrapped

    kinds = {(False, False): grpc.unary_unary_rpc_method_handler, (True, False): grpc.stream_unary_rpc_method_handler,
             (False, True): grpc.unary_stream_rpc_method_handler, (True, True): grpc.stream_stream_rpc_method_handler}
    handlers = []
    for sname, methods in pr.services():
        if sname not in impl:
            continue  # gpio: not emulated (UNIMPLEMENTED)
        table = {}
        for meth, (req, resp, cs, ss) in methods.items():
            fn = guard(impl[sname][meth], f"{sname}/{meth}", ss)
            table[meth] = kinds[(cs, ss)](fn, request_deserializer=req.FromString,
                                          response_serializer=resp.SerializeToString)
        handlers.append(grpc.method_handlers_generic_handler(sname, table))
    return handlers


IMPLEMENTED = {
    "remote_device.RemoteDevice": ["existsfile", "readfile", "writefile", "set_bitstream_attrs", "download",
                                   "set_pl_clk", "shutdown"],
    "mmio.Mmio": ["get_mmio", "read", "write"],
    "buffer.RemoteBuffer": ["allocate", "write", "read", "freebuffer", "flush", "invalidate", "physical_address",
                            "virtual_address", "cacheable"],
}


def _listen_error(host: str, port: int, why) -> str:
    hint = (" (another emulator or program holds it: stop that one, or give --port N, 0 for any free port)"
            if "in use" in str(why).lower() else "")
    return f"cannot listen on {host}:{port}: {why}{hint}"


class Emulator:
    """A running emulator: ``.port``, ``.board``, ``.stop()``."""

    def __init__(self, package, port: int = 7967, host: str = HOST, latency: float = 0.0, workdir=None,
                 ddr_mb: int = 1024, log=None):
        import grpc
        if host != HOST:
            raise EdgeMoeError(f"the emulator serves {HOST} only (it has no authentication), not {host}")
        self.log = log or (lambda m: print(m, file=sys.stderr, flush=True))
        pkg = Path(package)
        pmf = pkg / "package_manifest.json"
        if not pmf.is_file():
            raise EdgeMoeError(f"{pkg} is not a package made by `edgemoe package` (no package_manifest.json)")
        if not (pkg / "data" / "manifest.json").is_file():
            raise EdgeMoeError(f"{pkg}/data/manifest.json not found: the package is incomplete")
        pm = json.loads(pmf.read_text())
        from edgemoe.options import check_number
        port = check_number("port", port)   # 0..65535, the message naming the range
        if port:  # fail before the kernel compiles, not after
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind((host, port))
                except OSError as e:
                    raise EdgeMoeError(_listen_error(host, port, e.strerror)) from None
        self._tmp = None
        if workdir is None:
            self._tmp = tempfile.mkdtemp(prefix="edgemoe-emulate-")
            workdir = self._tmp
        Path(workdir).mkdir(parents=True, exist_ok=True)
        project, how = kernel_project(pkg, workdir, self.log)
        self.log(f"edgemoe emulate: kernel C++ from {how}; compiling (C simulation)")
        kernel = CsimKernel(project)
        self.board = BoardEmulator(pm, kernel, latency=latency, ddr_bytes=int(ddr_mb) << 20, log=self.log)
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8),
                                  handlers=_handlers(self.board, self.log),
                                  options=[("grpc.so_reuseport", 0),
                                           ("grpc.max_receive_message_length", 64 << 20),
                                           ("grpc.max_send_message_length", 64 << 20)])
        try:
            bound = self.server.add_insecure_port(f"{host}:{int(port)}")
        except RuntimeError:
            bound = 0
        if not bound:
            raise EdgeMoeError(_listen_error(host, port, "in use, or not available"))
        self.host, self.port = host, bound
        self.server.start()

    def wait(self):
        self.server.wait_for_termination()

    def stop(self, grace: float = 1.0):
        self.server.stop(grace).wait()
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


__all__ = ["Emulator", "IMPLEMENTED", "HOST", "CHUNK"]
