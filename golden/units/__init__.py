"""Bit-accurate fixed-point models of the Edge-MoE hardware units, each beside its float reference.

One module per unit, named as the unit is everywhere else (HLS template, RTL, cocotb bench, tests):
``patch_embed``, ``layernorm``, ``linear``, ``attention``, ``softmax``, ``gelu``, ``moe_route``.
Every function performs the operations in the order the hardware does, on raw integers, so the
generated C++ and RTL can be compared with it bit for bit.
"""
