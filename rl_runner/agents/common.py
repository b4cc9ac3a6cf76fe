"""Small pieces shared by the agents."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


def make_optimizer(
    name: str,
    parameters: Iterable[nn.Parameter],
    lr: float,
    weight_decay: float = 0.0,
    amsgrad: bool = False,
    eps: float = 1e-8,
) -> torch.optim.Optimizer:
    """An optimiser by name, using the fused (one-kernel) CPU/GPU update where torch has it."""
    params = list(parameters)
    if name == "adam":
        return torch.optim.Adam(
            params, lr=lr, weight_decay=weight_decay, amsgrad=amsgrad, eps=eps, fused=True
        )
    if name == "adamw":
        return torch.optim.AdamW(
            params, lr=lr, weight_decay=weight_decay, amsgrad=amsgrad, eps=eps, fused=True
        )
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=weight_decay, eps=eps, foreach=True)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, foreach=True)
    raise ValueError(f"unknown optimizer {name!r}")


def reapply_hyperparameters(
    optimizer: torch.optim.Optimizer, weight_decay: float, eps: float
) -> None:
    """`Optimizer.load_state_dict` brings back the saved hyperparameters; a resumed run's
    config may have changed them (the learning rate is set at every update anyway)."""
    for group in optimizer.param_groups:
        group["weight_decay"] = weight_decay
        if "eps" in group:
            group["eps"] = eps
