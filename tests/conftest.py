"""Fixtures shared by every tier."""

import pytest


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tiny models run fastest single-threaded (CI has two shared cores)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
