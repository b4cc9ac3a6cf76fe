"""A module's parameters as views into one contiguous tensor.

With every weight and every gradient living in one flat tensor each, a gradient
norm, a clip, an optimiser step and a target-network update are one kernel call
each instead of one per layer; on small networks those per-call overheads, not
the arithmetic, are what an update costs.
"""

from __future__ import annotations

import torch
from torch import nn


class FlatParameters:
    def __init__(self, module: nn.Module, with_grad: bool = True) -> None:
        params = list(module.parameters())
        first = params[0]
        total = sum(p.numel() for p in params)
        self.param = nn.Parameter(torch.empty(total, dtype=first.dtype, device=first.device))
        self.grad = torch.zeros_like(self.param) if with_grad else None
        offset = 0
        with torch.no_grad():
            for p in params:
                size = p.numel()
                self.param[offset : offset + size].copy_(p.view(-1))
                p.data = self.param.data[offset : offset + size].view_as(p)
                if self.grad is not None:
                    # Backward accumulates in place into an existing .grad, so these
                    # views stay the module's gradients as long as nobody sets them to None.
                    p.grad = self.grad[offset : offset + size].view_as(p)
                offset += size
        self.param.grad = self.grad

    def _gradient(self) -> torch.Tensor:
        if self.grad is None:
            raise RuntimeError("these parameters were flattened without gradients")
        return self.grad

    def zero_grad(self) -> None:
        self._gradient().zero_()

    def clip_grad_value_(self, limit: float) -> None:
        self._gradient().clamp_(-limit, limit)

    def clip_grad_norm_(self, max_norm: float) -> None:
        gradient = self._gradient()
        scale = max_norm / (torch.linalg.vector_norm(gradient) + 1e-6)
        gradient.mul_(scale.clamp_(max=1.0))

    @torch.no_grad()
    def update_towards(self, source: FlatParameters, tau: float) -> None:
        """self <- tau * source + (1 - tau) * self (tau = 1 copies)."""
        if tau == 1.0:
            self.param.copy_(source.param)
        else:
            self.param.lerp_(source.param, tau)
