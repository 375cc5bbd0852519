"""edgemoe: FPGA accelerators for multi-task Mixture-of-Experts vision transformers (Edge-MoE / M3ViT).

Subpackages (each a top-level folder of the source tree):
  edgemoe.golden   float (PyTorch) and bit-accurate fixed-point reference models
  edgemoe.codegen  Vitis HLS project generation
  edgemoe.sim      C and RTL simulation (cocotb)
  edgemoe.host     PYNQ host runtime (numpy + pynq only)
  edgemoe.boards   board definitions and Vivado flows
Importing ``edgemoe`` itself stays light: no torch, so the host runtime can use it on a board.
"""
__version__ = "0.1.0"

from .errors import EdgeMoeError  # noqa: E402,F401


def __getattr__(name):
    """Lazy exports (importing edgemoe stays torch free): ``edgemoe.generate``, ``edgemoe.Project``."""
    if name == "generate":
        from edgemoe.codegen.generate import generate
        return generate
    if name == "Project":
        from edgemoe.codegen.project import Project
        return Project
    raise AttributeError(f"module 'edgemoe' has no attribute {name!r}")
