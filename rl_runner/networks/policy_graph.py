"""Layers of an exported policy (`rl-export`): the evaluation policy of an agent as one
torch module from the env's observations, as the env returns them, to its actions. What
acting does in numpy around the networks (normalising observations with frozen
statistics, squashing and scaling actions to the env's bounds, the greedy choice) is
written here as layers, so that an ONNX or TorchScript file holds the whole policy."""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

NORMALISER_EPSILON = 1e-8  # the running normaliser's (agents/normalisation.py)


def frozen(network: nn.Module) -> nn.Module:
    """A CPU copy, in evaluation mode, without gradients: the export never touches the
    agent's own (flat, shared) parameters."""
    network = copy.deepcopy(network).cpu().eval()
    return network.requires_grad_(False)


def _buffer(values: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values, dtype=np.float32))


class Float32Input(nn.Module):
    """Observations as the networks read them: images stay bytes (the convolutional
    network scales them), everything else becomes float32."""

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return obs if obs.dtype == torch.uint8 else obs.to(torch.float32)


class Standardised(nn.Module):
    """(obs - mean) / sqrt(var + eps), clipped to +-clip, with the statistics frozen."""

    mean: torch.Tensor  # a buffer
    scale: torch.Tensor  # a buffer

    def __init__(self, mean: np.ndarray, var: np.ndarray, clip: float) -> None:
        super().__init__()
        self.register_buffer("mean", _buffer(mean))
        self.register_buffer("scale", _buffer(np.sqrt(var + NORMALISER_EPSILON)))
        self.clip = float(clip)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.clamp((obs - self.mean) / self.scale, -self.clip, self.clip)


class FirstMember(nn.Module):
    """Member 0 of an ensemble (the actor; an MLPEnsemble or a ConvEnsemble):
    (batch, ...) -> (batch, out)."""

    def __init__(self, ensemble: nn.Module) -> None:
        super().__init__()
        self.ensemble = frozen(ensemble)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.ensemble(obs)[0]


class FirstColumns(nn.Module):
    """The first `count` outputs (a policy's, beside a shared value or a log-std)."""

    def __init__(self, count: int) -> None:
        super().__init__()
        self.count = count

    def forward(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs[:, : self.count]


class Greedy(nn.Module):
    """The index of the largest output (a Q-value, a logit): int64 actions."""

    def forward(self, outputs: torch.Tensor) -> torch.Tensor:
        return torch.argmax(outputs, dim=1)


class SquashedToBounds(nn.Module):
    """tanh to [-1, 1], then to the env's bounds (their centre +- half their range), per
    dimension."""

    centre: torch.Tensor  # a buffer
    half_range: torch.Tensor  # a buffer

    def __init__(self, centre: np.ndarray, half_range: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("centre", _buffer(centre))
        self.register_buffer("half_range", _buffer(half_range))

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        return self.centre + self.half_range * torch.tanh(raw)


class ClippedToBounds(nn.Module):
    """A Gaussian's mean, clipped to the env's bounds as the env receives it."""

    low: torch.Tensor  # a buffer
    high: torch.Tensor  # a buffer

    def __init__(self, low: np.ndarray, high: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("low", _buffer(low))
        self.register_buffer("high", _buffer(high))

    def forward(self, mean: torch.Tensor) -> torch.Tensor:
        return torch.minimum(torch.maximum(mean, self.low), self.high)
