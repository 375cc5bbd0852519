"""The emulated board's DDR (``edgemoe emulate``): buffers that ``pynq.allocate`` makes, at page-aligned
physical addresses (first fit from 0x4000_0000, ``--ddr-mb`` of room), written and read by
``sync_to_device`` / ``sync_from_device`` and by the C-simulated kernel at its pointer registers; and the
errors the emulator reports to the pynq client.

A bad pointer (outside every allocated buffer), an unknown buffer and the like are a
:class:`RemoteError`: the service puts it in the RPC's ``msg`` field (pynq raises RuntimeError with it)
or returns it as a gRPC status (its ``code``). A :class:`KernelFault` is one raised while the kernel runs.
"""
from __future__ import annotations

import bisect

DDR_BASE = 0x4000_0000
PAGE = 4096


class RemoteError(Exception):
    """An error returned to the client: in the reply's ``msg`` field, or as a gRPC status."""

    def __init__(self, msg, code: str = "FAILED_PRECONDITION"):
        super().__init__(msg)
        self.code = code


class KernelFault(RemoteError):
    pass


# ---- emulated DDR -------------------------------------------------------------------------------
class Buffer:
    __slots__ = ("id", "address", "data", "dtype")

    def __init__(self, bid: str, address: int, size: int, dtype: str):
        self.id, self.address, self.data, self.dtype = bid, address, bytearray(size), dtype


class DDR:
    """Buffers at page-aligned physical addresses in [base, base + size), first fit."""

    def __init__(self, base: int = DDR_BASE, size: int = 1 << 30):
        self.base, self.size = base, size
        self.buffers = {}  # id -> Buffer
        self._starts = []  # sorted addresses of live buffers
        self._by_addr = {}
        self._next_id = 1

    def used(self) -> int:
        return sum(len(b.data) for b in self.buffers.values())

    def allocate(self, size: int, dtype: str = "") -> Buffer:
        if size <= 0:
            raise RemoteError(f"cannot allocate {size} bytes", "INVALID_ARGUMENT")
        span = -(-size // PAGE) * PAGE
        addr = self.base
        for s in self._starts:
            if s - addr >= span:
                break
            b = self._by_addr[s]
            addr = max(addr, s + -(-len(b.data) // PAGE) * PAGE)
        if addr + span > self.base + self.size:
            raise RemoteError(f"emulated DDR is full: {size} bytes requested, {self.used()} of {self.size} "
                              f"in use (edgemoe emulate --ddr-mb)", "RESOURCE_EXHAUSTED")
        b = Buffer(str(self._next_id), addr, size, dtype)
        self._next_id += 1
        self.buffers[b.id] = b
        bisect.insort(self._starts, addr)
        self._by_addr[addr] = b
        return b

    def get(self, bid: str) -> Buffer:
        b = self.buffers.get(bid)
        if b is None:
            raise RemoteError(f"unknown buffer id {bid!r} (freed, or allocated before the emulator restarted)")
        return b

    def free(self, bid: str) -> None:
        b = self.get(bid)
        del self.buffers[bid]
        self._starts.remove(b.address)
        del self._by_addr[b.address]

    def find(self, addr: int, n: int):
        """(buffer, offset) holding [addr, addr + n), or None."""
        i = bisect.bisect_right(self._starts, addr) - 1
        if i < 0:
            return None
        b = self._by_addr[self._starts[i]]
        off = addr - b.address
        return (b, off) if off + n <= len(b.data) else None

    def span(self, addr: int, n: int, what: str):
        hit = self.find(addr, n)
        if hit is None:
            near = self.find(addr, 1)
            if near is not None:
                raise KernelFault(f"{what}: 0x{addr:X} + {n} bytes runs past the end of the buffer at "
                                  f"0x{near[0].address:X} ({len(near[0].data)} bytes)")
            raise KernelFault(f"{what}: 0x{addr:X} ({n} bytes) is not inside any allocated buffer")
        return hit

    def read(self, addr: int, n: int, what: str = "read") -> bytes:
        b, off = self.span(addr, n, what)
        return bytes(b.data[off:off + n])

    def write(self, addr: int, data: bytes, what: str = "write") -> None:
        b, off = self.span(addr, len(data), what)
        b.data[off:off + len(data)] = data


__all__ = ["RemoteError", "KernelFault", "Buffer", "DDR", "DDR_BASE", "PAGE"]
