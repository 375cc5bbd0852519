"""The records of the ``bank`` rule of ``edgemoe hls-check`` (hls_banks): :class:`ArrayRef`, a partitioned
array as one inlined function sees it (its dimensions, the indices a sub-array argument already applied,
whether its banks are registers); :class:`Inst`, one function inlined into a pipelined loop with its
parameters and arrays bound to the call's arguments; :class:`Site`, one access of an array in the
loop's iteration (its indices, read / write, the lanes and branches around it), which hls_bank_count
counts per bank.
"""
from __future__ import annotations

from dataclasses import dataclass

from .hls_arrays import ArrayDef
from .hls_syntax import Function


@dataclass(frozen=True)
class ArrayRef:
    adef: ArrayDef
    dims: tuple          # dimension sizes (None: unknown)
    prefix: tuple        # indices already applied (a sub-array argument such as tmp[s]), in the loop's terms
    uid: tuple
    label: str
    register: bool


@dataclass
class Inst:
    """One function as inlined into a pipelined loop (or the loop's own function)."""
    fn: Function
    params: dict         # name -> text in the loop's terms
    arrays: dict         # visible name -> ArrayRef
    lanes: tuple = ()    # lane tokens around the call
    path: tuple = ()     # conditions around the call
    chain: tuple = ()    # call positions from the loop body
    site: int | None = None
    depth: int = 0
    stack: frozenset = frozenset()


@dataclass
class Site:
    ref: ArrayRef
    subs: list
    kind: str            # r / w / rw
    lanes: tuple
    path: tuple
    uid: tuple
    pos: int
    top: int
    via: str
    shown: str


__all__ = ["ArrayRef", "Inst", "Site"]
