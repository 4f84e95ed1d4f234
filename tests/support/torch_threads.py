"""One torch intra-op thread for a test module: the tests' tensors are tiny, and extra threads only add
contention (orders of magnitude on a busy host). Use it as an autouse fixture by importing it:

    from support.torch_threads import single_thread_torch  # noqa: F401  (autouse, module scope)
"""

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def single_thread_torch():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
