"""The compute resource: the device, and torch's CPU threads set for the small composition network."""

import torch

from astromined.ml.device import CPU_THREADS, select_device
from resources.compute import ComputeResource


def test_default_resource_runs_torch_on_one_cpu_thread(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert ComputeResource().device() == torch.device("cpu")
        assert torch.get_num_threads() == CPU_THREADS == 1
    finally:
        torch.set_num_threads(previous)


def test_explicit_threads_and_torch_default(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    previous = torch.get_num_threads()
    try:
        ComputeResource(torch_threads=2).device()
        assert torch.get_num_threads() == 2
        torch.set_num_threads(3)
        ComputeResource(torch_threads=0).device()  # 0: leave torch's setting alone
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(previous)


def test_cuda_when_present_and_allowed(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    previous = torch.get_num_threads()
    try:
        assert select_device(allow_cuda=True, cpu_threads=0) == torch.device("cuda")
        assert select_device(allow_cuda=False, cpu_threads=0) == torch.device("cpu")
        assert ComputeResource(allow_cuda=False, torch_threads=0).device() == torch.device("cpu")
    finally:
        torch.set_num_threads(previous)
