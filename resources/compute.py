"""Where torch runs: CUDA when present and allowed, else CPU. Assets never hard-code a device."""

import time

import dagster as dg
import torch


class ComputeResource(dg.ConfigurableResource):
    allow_cuda: bool = True
    torch_threads: int = 0  # 0: leave torch's default

    def device(self) -> torch.device:
        if self.torch_threads > 0:
            torch.set_num_threads(self.torch_threads)
        if self.allow_cuda and torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("cpu")

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
