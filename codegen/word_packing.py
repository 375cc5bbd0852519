"""Packing of raw codes into the kernel's AXI words: :func:`pack_raw` / :func:`unpack_raw` (a buffer's
codes as little-endian words), the engine tile order of the linear weights (:func:`to_tile_order` /
:func:`from_tile_order`, :func:`tile_words`) and :class:`Buffer`, one region of ``weights.bin`` with its
shape, type, word offset and tile / port layout.  Which buffers there are and where they sit is
:class:`edgemoe.codegen.pack.Layout`'s.

Every m_axi port of the top kernel carries ``ap_uint<AXI_BITS>`` words.  A buffer is a run of
words starting on a word boundary; value ``j`` of a buffer of type T sits in word ``j / per`` at
bits ``[lane * SB, lane * SB + W)`` with ``lane = j % per``, ``SB`` = T's width rounded up to a
power of two (at least 8), ``per = AXI_BITS / SB`` (``packed_ptr<T>`` in edgemoe_fixed.h).  With
words stored little-endian, a buffer is simply its raw codes as little-endian SB-bit integers,
padded with zeros to a whole word: that is what ``weights.bin`` / ``input_pixels.bin`` hold.

The linear-engine weights (patch embedding, qkv, proj, dense fc1/fc2, every expert's fc1/fc2) are
stored in *engine tile order* so that the engine reads one AXI word per cycle: for each output tile
(``engine_out`` rows), for each input tile (``engine_in`` columns), the tile's values row-major,
packed as above and padded to ``tile_words = ceil(engine_out * engine_in * SB / AXI_BITS)`` words
(``TILE_WORDS`` / ``PATCH_TILE_WORDS`` in edgemoe_layout.h).  With ``weight_ports`` P > 1 the engine
loads a tile in ``LW = ceil(tile_words / P)`` steps of one word per port (port p: tile word
``k * P + p`` in step k), and every port reads one contiguous range of each matrix (a burst): a
matrix is P segments of ``n_tiles * LW`` words, segment p holding port p's words step by step
(tile words past ``tile_words`` are zero padding).  With one port this is plain tile order.  An expert's matrix is a contiguous
block of tiles (``EXPERT_FC1_WORDS`` / ``EXPERT_FC2_WORDS`` words per expert).  The MoE gates run on
the same engine: each task's [experts][embed] gate is one matrix in tile order whose expert rows are
padded with zero weights to ``GATE_OUT`` (a multiple of ``engine_out``), ``GATE_TASK_WORDS`` words per
task.  The one-time parameters stay row-major.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgemoe.golden.apfixed import FixedType
from edgemoe.kernel_interface import storage_bits


def tile_words(engine_out: int, engine_in: int, sb: int, axi_bits: int) -> int:
    """AXI words of one engine_out x engine_in weight tile of ``sb``-bit values (padded to whole words):
    TILE_WORDS of edgemoe_layout.h, and what the cycle model loads per tile."""
    return -(-engine_out * engine_in // (axi_bits // sb))



@dataclass
class Buffer:
    name: str
    shape: tuple
    ftype: FixedType
    region: str            # "onetime" | "stream"
    word_offset: int = 0
    raw: np.ndarray | None = field(default=None, repr=False)
    #: (engine_out, engine_in) for weights stored in engine tile order (the last two dims are a
    #: [out][in] matrix, any leading dims index matrices, e.g. experts; out is padded with zero rows
    #: to a multiple of engine_out); None: row-major
    tile: tuple | None = None
    ports: int = 1         # weight ports: each reads one contiguous segment of every matrix

    def load_steps(self, axi_bits: int) -> int:
        """Steps of one tile's load: a word per port per step."""
        return -(-self.tile_words(axi_bits) // self.ports)

    @property
    def sb(self) -> int:
        return storage_bits(self.ftype.W)

    @property
    def count(self) -> int:
        return int(np.prod(self.shape))

    def tile_words(self, axi_bits: int) -> int:
        """Words of one engine tile (each tile is padded to whole words)."""
        eo, ei = self.tile
        return tile_words(eo, ei, self.sb, axi_bits)

    def n_tiles(self) -> int:
        eo, ei = self.tile
        out_dim, in_dim = self.shape[-2:]
        return -(-out_dim // eo) * (in_dim // ei)

    def matrix_words(self, axi_bits: int) -> int:
        """Words of one [out][in] matrix (one expert's block for expert weights): every port's segment."""
        return self.ports * self.n_tiles() * self.load_steps(axi_bits)

    @property
    def padded_out(self) -> int:
        """Rows of one matrix as stored: out padded with zero rows to whole output tiles."""
        return -(-self.shape[-2] // self.tile[0]) * self.tile[0]

    def words(self, axi_bits: int) -> int:
        if self.tile is not None:
            return int(np.prod(self.shape[:-2], dtype=np.int64)) * self.matrix_words(axi_bits)
        per = axi_bits // self.sb
        return -(-self.count // per)

    def _port_words(self, axi_bits: int) -> tuple:
        """(matrices, tiles per matrix, tile words, load steps) of the port-segment layout."""
        return (int(np.prod(self.shape[:-2], dtype=np.int64)), self.n_tiles(), self.tile_words(axi_bits),
                self.load_steps(axi_bits))

    def to_bytes(self, axi_bits: int) -> bytes:
        if self.tile is None:
            return pack_raw(self.raw.reshape(-1), self.ftype, axi_bits)
        per = axi_bits // self.sb
        flat = to_tile_order(self.raw, self.tile, per)
        if self.ports > 1:
            m, nt, tw, lw = self._port_words(axi_bits)
            words = flat.reshape(m, nt, tw, per)
            words = np.pad(words, ((0, 0), (0, 0), (0, lw * self.ports - tw), (0, 0)))
            # [matrix][tile][step][port] -> [matrix][port][tile][step]: one contiguous range per port
            flat = words.reshape(m, nt, lw, self.ports, per).transpose(0, 3, 1, 2, 4).reshape(-1)
        return pack_raw(flat, self.ftype, axi_bits)

    def from_bytes(self, data: bytes, axi_bits: int) -> np.ndarray:
        """Raw codes in the buffer's logical shape from its bytes (the inverse of to_bytes)."""
        if self.tile is None:
            return unpack_raw(data, self.ftype, self.count).reshape(self.shape)
        per = axi_bits // self.sb
        n = self.words(axi_bits) * per
        flat = unpack_raw(data, self.ftype, n)
        if self.ports > 1:
            m, nt, tw, lw = self._port_words(axi_bits)
            words = flat.reshape(m, self.ports, nt, lw, per).transpose(0, 2, 3, 1, 4).reshape(m, nt, lw * self.ports, per)
            flat = words[:, :, :tw, :].reshape(-1)
        return from_tile_order(flat, self.shape, self.tile, per)


def to_tile_order(raw, tile: tuple, per: int) -> np.ndarray:
    """[..., out, in] raw codes -> flat raw codes in engine tile order: for each matrix, output tile,
    input tile, the tile's values row-major, padded with zeros to a multiple of ``per`` (a word).
    ``out`` is first padded with zero rows to a multiple of the tile's rows (the MoE gate)."""
    eo, ei = tile
    raw = np.asarray(raw, dtype=np.int64)
    pad_rows = (-raw.shape[-2]) % eo
    if pad_rows:
        raw = np.pad(raw, [(0, 0)] * (raw.ndim - 2) + [(0, pad_rows), (0, 0)])
    out_dim, in_dim = raw.shape[-2:]
    m = raw.reshape(-1, out_dim // eo, eo, in_dim // ei, ei).transpose(0, 1, 3, 2, 4)
    tiles = m.reshape(-1, eo * ei)
    pad = (-(eo * ei)) % per
    return np.pad(tiles, ((0, 0), (0, pad))).reshape(-1)



def from_tile_order(flat, shape: tuple, tile: tuple, per: int) -> np.ndarray:
    """The inverse of :func:`to_tile_order`: flat tile-order codes -> raw codes of ``shape``."""
    eo, ei = tile
    rows, in_dim = shape[-2:]
    out_dim = -(-rows // eo) * eo       # padded rows as stored
    padded = eo * ei + (-(eo * ei)) % per
    lead = int(np.prod(shape[:-2], dtype=np.int64))
    tiles = np.asarray(flat).reshape(lead * (out_dim // eo) * (in_dim // ei), padded)[:, :eo * ei]
    m = tiles.reshape(lead, out_dim // eo, in_dim // ei, eo, ei).transpose(0, 1, 3, 2, 4)
    return m.reshape(tuple(shape[:-2]) + (out_dim, in_dim))[..., :rows, :]



def pack_raw(raw, ftype: FixedType, axi_bits: int) -> bytes:
    """Raw codes -> packed little-endian bytes of whole AXI words (zero padded)."""
    sb = storage_bits(ftype.W)
    raw = np.asarray(raw, dtype=np.int64).reshape(-1)
    mask = np.int64(-1) if ftype.W >= 64 else np.int64((1 << ftype.W) - 1)
    bits = (raw & mask).astype(np.uint64)
    data = bits.astype({8: "<u1", 16: "<u2", 32: "<u4", 64: "<u8"}[sb]).tobytes()
    wb = axi_bits // 8
    pad = (-len(data)) % wb
    return data + b"\0" * pad



def unpack_raw(data: bytes, ftype: FixedType, count: int) -> np.ndarray:
    """Packed bytes -> raw codes (sign-extended for signed types)."""
    sb = storage_bits(ftype.W)
    u = np.frombuffer(data, dtype={8: "<u1", 16: "<u2", 32: "<u4", 64: "<u8"}[sb], count=count)
    v = u.astype(np.uint64)
    if ftype.W < 64:
        v = v & np.uint64((1 << ftype.W) - 1)
    v = v.astype(np.int64)
    if ftype.signed and ftype.W < 64:
        sign = np.int64(1 << (ftype.W - 1))
        v = (v ^ sign) - sign
    return v



__all__ = ["Buffer", "pack_raw", "unpack_raw", "to_tile_order", "from_tile_order", "tile_words"]
