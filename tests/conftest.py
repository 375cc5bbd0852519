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
