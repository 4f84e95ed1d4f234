"""Where torch runs, and with how many CPU threads. Shared by the compute resource and plain scripts.

CUDA when present and allowed, else the CPU. On the CPU, torch's intra-op thread pool is set to
``CPU_THREADS`` = 1: the composition network is small (19 inputs, batches of 256), so no matmul is big
enough to split, and each extra OpenMP thread adds a fork/join and a spin-wait per operation. On this
project's 2-core machine, while other work ran, three epochs of one network took 0.6–2.4 s of CPU on one
thread and 14–20 s on two (wall clock 2.4–12 s against 38–71 s); on an idle machine the two are level.
BENCHMARKS.md (*Data-to-model latency*) has the runs.
Steps that need more (a much larger model on a CPU-only node) set ``ComputeResource.torch_threads``.
"""

from __future__ import annotations

import torch

CPU_THREADS = 1


def select_device(allow_cuda: bool = True, cpu_threads: int = CPU_THREADS) -> torch.device:
    """The device to train and predict on; sets torch's CPU threads (``cpu_threads`` ≤ 0: torch's default).

    The thread count is process-wide (it also applies to CPU work around a CUDA step)."""
    if cpu_threads > 0:
        torch.set_num_threads(cpu_threads)
    if allow_cuda and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")
