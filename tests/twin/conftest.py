"""Twin tests run torch on one thread: on a small shared CPU, torch's spinning worker threads slow tiny
models down by an order of magnitude when other processes hold the cores."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
