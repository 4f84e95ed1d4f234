"""AdamW for training on the CPU, without ``torch.optim``: the same fused kernel, none of the wrapping.

Why: the first ``torch.optim`` optimizer a process builds imports ``torch._dynamo`` (its methods are wrapped
by ``torch._disable_dynamo``, which imports it on first call): 1.2-1.9 s of every process that trains, a
tenth of a candidate's training at the benchmark scale, paid again by each Kubernetes step and each
``astromined run``. And ``Optimizer.step``'s wrapper (hooks, profiler records, grouping the tensors by
device and dtype) took ~0.2 ms per step around a ~0.03 ms kernel: ~1 s over the ~5,500 steps of a
candidate (BENCHMARKS.md, *Data-to-model latency*).

``FusedAdamW`` keeps the state ``torch.optim.AdamW(fused=True)`` keeps (per parameter: a float32 step count
and the two moments) and calls the same kernel, ``torch._fused_adamw_``, the same way, so the weights are
bit-identical (``tests/unit/ml/test_adamw.py`` pins it against ``torch.optim.AdamW``: a torch upgrade that
changes the kernel's signature or semantics fails there, not silently in training). GPU training keeps
``torch.optim.AdamW`` for its mixed-precision loss scaling (``torch.amp.GradScaler`` drives it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch


class FusedAdamW:
    """Decoupled-weight-decay Adam over ``params`` (no AMSGrad, not maximizing), one kernel per step."""

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter],
        lr: float,
        weight_decay: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ):
        self.params = list(params)
        self.lr, self.weight_decay, self.betas, self.eps = lr, weight_decay, betas, eps
        self.exp_avgs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.exp_avg_sqs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.steps = [torch.zeros((), dtype=torch.float32, device=p.device) for p in self.params]

    def zero_grad(self) -> None:
        for param in self.params:
            param.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """One AdamW update of every parameter that has a gradient (as ``torch.optim`` skips the rest)."""
        live = [i for i, param in enumerate(self.params) if param.grad is not None]
        if not live:
            return
        steps = [self.steps[i] for i in live]
        torch._foreach_add_(steps, 1)
        torch._fused_adamw_(
            [self.params[i] for i in live],
            [self.params[i].grad for i in live],
            [self.exp_avgs[i] for i in live],
            [self.exp_avg_sqs[i] for i in live],
            [],
            steps,
            amsgrad=False,
            lr=self.lr,
            beta1=self.betas[0],
            beta2=self.betas[1],
            weight_decay=self.weight_decay,
            eps=self.eps,
            maximize=False,
            grad_scale=None,
            found_inf=None,
        )

    def narrowed(self, params: Iterable[torch.nn.Parameter], positions: Sequence[int]) -> FusedAdamW:
        """The optimizer of a stack narrowed to the members at ``positions`` (``params``: the narrowed
        stack's parameters, in this optimizer's order), carrying on where this one is: the moments are per
        weight, so each kept member's slice of them is its whole state."""
        narrowed = FusedAdamW(params, self.lr, self.weight_decay, self.betas, self.eps)
        if len(narrowed.params) != len(self.params):
            raise ValueError(f"{len(narrowed.params)} parameters for an optimizer of {len(self.params)}")
        index = torch.tensor(list(positions), device=self.params[0].device if self.params else None)
        narrowed.exp_avgs = [moment.index_select(0, index) for moment in self.exp_avgs]
        narrowed.exp_avg_sqs = [moment.index_select(0, index) for moment in self.exp_avg_sqs]
        narrowed.steps = [step.clone() for step in self.steps]
        return narrowed
