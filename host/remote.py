"""The remote PYNQ device (a board or ``edgemoe emulate`` over the network) and pynq calls under a deadline.

Off the board, with PYNQ_REMOTE_DEVICES set, the address pynq will dial (the first host, port 7967 or
EDGEMOE_PYNQ_PORT) is tried first with a plain TCP connect (CONNECT_TIMEOUT_S): no board or
emulator there is one line naming the address, at once. Every pynq call to a remote device runs under
a deadline (REMOTE_CALL_TIMEOUT_S; polls: the run's timeout), so a board that stops answering ends
the run with one line instead of a hang.
"""
from __future__ import annotations

import os
import socket
import threading

from edgemoe.errors import EdgeMoeError, ToolMissingError

PYNQ_PORT = 7967         # the port PYNQ.remote dials
CONNECT_TIMEOUT_S = 3.0  # the TCP probe of a remote board / emulator
REMOTE_CALL_TIMEOUT_S = 120.0  # any other pynq call to a remote device (a bitstream or weights transfer included)


def remote_address():
    """(host, port, PYNQ_REMOTE_DEVICES value) pynq dials for its active device, or None when
    PYNQ_REMOTE_DEVICES is not set (pynq then looks for a board here)."""
    env = os.environ.get("PYNQ_REMOTE_DEVICES", "")
    hosts = [h.strip() for h in env.split(",") if h.strip()]
    if not hosts:
        return None
    port = os.environ.get("EDGEMOE_PYNQ_PORT") or PYNQ_PORT
    try:
        port = int(port)
    except ValueError:
        raise EdgeMoeError(f"EDGEMOE_PYNQ_PORT={port!r} is not a port number (0-65535)") from None
    if not 0 < port <= 65535:
        raise EdgeMoeError(f"EDGEMOE_PYNQ_PORT={port} is outside the TCP ports 1-65535")
    return hosts[0], port, env


def _where(addr) -> str:
    host, port, env = addr
    return f"{host}:{port} (PYNQ_REMOTE_DEVICES={env}, port {port})"


def check_remote(pkg="PKG", timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """With PYNQ_REMOTE_DEVICES set: one TCP connect to the address pynq will dial; nothing there is a
    one-line error naming it and suggesting ``edgemoe emulate`` (pynq itself waits 5 s and names nothing)."""
    addr = remote_address()
    if addr is None:
        return
    try:
        socket.create_connection(addr[:2], timeout=timeout_s).close()
    except OSError as e:
        why = f"no answer within {timeout_s:g} s" if isinstance(e, socket.timeout) else (e.strerror or str(e))
        raise ToolMissingError(f"no PYNQ board or emulator at {_where(addr)}: {why}; start the emulator with "
                               f"`edgemoe emulate --package {pkg}`, or point PYNQ_REMOTE_DEVICES at the board") from None


def _within(seconds: float, fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` in a daemon thread; TimeoutError when it has not returned in ``seconds``
    (a remote board that stopped answering: the thread is left behind, the process can still exit)."""
    box = {}

    def target():
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as e:  # noqa: BLE001 -- re-raised in the caller's thread
            box["error"] = e
    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        raise TimeoutError(f"no answer within {seconds:g} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def device_call(what: str, fn, *args, deadline_s: float | None = None, **kwargs):
    """A pynq call whose failure becomes one line (pynq raises RuntimeError("No Devices Found") off a board);
    to a remote device under a deadline (``deadline_s``, default REMOTE_CALL_TIMEOUT_S)."""
    addr = remote_address()
    try:
        if addr is None:
            return fn(*args, **kwargs)
        return _within(deadline_s or REMOTE_CALL_TIMEOUT_S, fn, *args, **kwargs)
    except Exception as e:  # noqa: BLE001 -- pynq raises plain exceptions; one line for the user
        why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if callable(getattr(e, "code", None)) and callable(getattr(e, "details", None)):  # a gRPC error (PYNQ.remote)
            why = f"connection to the board lost ({e.code().name}: {e.details()})"
        if isinstance(e, TimeoutError) and addr is not None:
            why = f"the board stopped answering ({why})"
        if addr is not None:
            hint = (f" [{_where(addr)}; no board or emulator answering there? `edgemoe emulate --package PKG` "
                    f"serves one]") if "failed to connect" in why.lower() else f" [{_where(addr)}]"
        else:
            hint = (" (no PYNQ board here: run on the board, or set PYNQ_REMOTE_DEVICES=<board ip> to drive one "
                    "over the network, or 127.0.0.1 with `edgemoe emulate --package PKG`)"
                    if "no devices" in why.lower() else "")
        raise ToolMissingError(f"{what} failed: {why}{hint}") from None


def select_remote_port(pynq) -> None:
    """PYNQ.remote always dials port 7967; EDGEMOE_PYNQ_PORT points it at another one (an emulator on
    a free port, several boards behind one host) by making that device the active one."""
    port = os.environ.get("EDGEMOE_PYNQ_PORT")
    host = os.environ.get("PYNQ_REMOTE_DEVICES")
    if not port or not host:
        return
    from pynq.pl_server.remote_device import RemoteDevice
    pynq.Device.active_device = RemoteDevice(0, host.split(",")[0].strip(), port=int(port))


__all__ = ["remote_address", "check_remote", "device_call", "select_remote_port",
           "PYNQ_PORT", "CONNECT_TIMEOUT_S", "REMOTE_CALL_TIMEOUT_S"]
