"""Where torch runs: CUDA when present and allowed, else CPU. Assets never hard-code a device."""

import time

import dagster as dg
import torch

from astromined.ml.device import CPU_THREADS, select_device


class ComputeResource(dg.ConfigurableResource):
    allow_cuda: bool = True
    # torch's CPU threads for the step's process (astromined/ml/device.py: why 1); 0 leaves torch's default.
    torch_threads: int = CPU_THREADS

    def device(self) -> torch.device:
        return select_device(self.allow_cuda, self.torch_threads)

    def probe(self) -> tuple[bool, str]:
        """Run a small matmul on the chosen device and report what it is."""
        device = self.device()
        try:
            started = time.perf_counter()
            a = torch.randn(256, 256, device=device)
            value = float((a @ a).sum())
            elapsed_ms = (time.perf_counter() - started) * 1000
        except Exception as exc:
            return False, f"{device}: {type(exc).__name__}: {exc}"
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        ok = value == value  # NaN would mean a broken device
        return ok, f"{device} ({name}), 256×256 matmul in {elapsed_ms:.1f} ms"
