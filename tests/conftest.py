"""Shared test set-up."""
import pytest


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """On a shared 2-core machine torch's thread pool stalls whenever another process holds a core
    (seen: 10x slower); the tests' tensors are small, so one thread is both faster and steadier."""
    try:
        import torch
    except ImportError:  # environments without torch (the PYNQ host env) need nothing here
        yield
        return
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session", params=["w16a32", "w8a8"])   # the keys of hls_unit_lib.PRECS
def lib(request, tmp_path_factory):
    """The HLS units compiled into one shared library per precision (the precisions and the preset:
    tests/hls_unit_lib.py), built once for test_hls_units.py and every test_unit_<unit>.py."""
    from edgemoe.codegen.unit_harness import build_unit_library
    from hls_unit_lib import DESIGN, PRECS, SPEC
    prec = PRECS[request.param]
    return build_unit_library(SPEC, prec, DESIGN, out_dir=tmp_path_factory.mktemp("units"))
