"""edgemoe.golden: the references every other layer is checked against.

``apfixed`` (ap_fixed emulation, with ``raw_codes`` and ``exact_matmul``), ``range_counts`` (values
its casts saturate or wrap), ``precision`` and ``fixed`` (bit-accurate units and encoder) need numpy
only; ``model`` (the float M3ViT), ``checkpoint`` and ``onnx_io`` need torch/onnx and are imported on
demand.
"""
