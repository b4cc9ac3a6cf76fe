"""Several MLPs of one shape evaluated in one batched call: twin critics, or one actor.

Member k's layer i computes `h @ weight[i][k] + bias[i][k]`; all members run in one
`baddbmm` per layer, so twin critics cost one forward, one backward and (with
`FlatParameters`) one optimiser step instead of two of each. A second input (the
action of a critic) can join at any layer: at 0 with the observation, at 1 after the
first hidden layer as in the DDPG paper.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TypeGuard

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": F.relu,
    "tanh": torch.tanh,
    "elu": F.elu,
    "gelu": F.gelu,
    "silu": F.silu,
}
_NUMPY_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": lambda x: np.maximum(x, 0.0, out=x),
    "tanh": lambda x: np.tanh(x, out=x),
}


class MLPEnsemble(nn.Module):
    def __init__(
        self,
        in_features: int,
        hidden_sizes: Sequence[int],
        out_features: int,
        activation: str,
        members: int = 1,
        join_features: int = 0,
        join_layer: int = 0,
    ) -> None:
        super().__init__()
        self.members = members
        self.activation = activation
        self.join_layer = join_layer
        self._activation = _ACTIVATIONS[activation]
        widths = [in_features, *hidden_sizes]
        outs = [*hidden_sizes, out_features]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for index, (width, out) in enumerate(zip(widths, outs, strict=True)):
            fan_in = width + (join_features if index == join_layer else 0)
            # nn.Linear's default initialisation, drawn for each member
            bound = 1.0 / math.sqrt(fan_in)
            self.weights.append(
                nn.Parameter(torch.empty(members, fan_in, out).uniform_(-bound, bound))
            )
            self.biases.append(nn.Parameter(torch.empty(members, 1, out).uniform_(-bound, bound)))
        # Plain list: ParameterList indexing costs more per forward than a small layer.
        self._layers = list(zip(self.weights, self.biases, strict=True))

    def forward(
        self,
        x: torch.Tensor,
        join: torch.Tensor | None = None,
        first: int | None = None,
        detach_weights: bool = False,
    ) -> torch.Tensor:
        """(batch, in) -> (members, batch, out). `join` is the second input,
        (batch, join_features). `first` evaluates only the first members; with
        `detach_weights` no gradient reaches the weights (an actor's loss through a
        critic needs the action's gradient, not the critic's)."""
        count = self.members if first is None else first
        h = x.expand(count, *x.shape[-2:])
        last = len(self._layers) - 1
        for index, (weight, bias) in enumerate(self._layers):
            if index == self.join_layer and join is not None:
                h = torch.cat([h, join.expand(count, *join.shape[-2:])], dim=-1)
            if first is not None:
                weight, bias = weight[:count], bias[:count]
            if detach_weights:
                weight, bias = weight.detach(), bias.detach()
            h = torch.baddbmm(bias, h, weight)
            if index < last:
                h = self._activation(h)
        return h


class NumpyEnsembleMember:
    """Member 0 of an ensemble without a join input, computed by numpy on the weights'
    own memory: acting on one observation is dominated by torch's per-call overhead.
    Follows in-place weight updates; build it after the weights are flattened or moved."""

    def __init__(self, ensemble: MLPEnsemble) -> None:
        self._layers = [
            (weight.detach()[0].numpy(), bias.detach()[0, 0].numpy())
            for weight, bias in zip(ensemble.weights, ensemble.biases, strict=True)
        ]
        self._activation = _NUMPY_ACTIVATIONS[ensemble.activation]

    @staticmethod
    def supports(ensemble: nn.Module) -> TypeGuard[MLPEnsemble]:
        """An ensemble of MLPs alone (not one over a CNN's features), on the CPU."""
        return (
            isinstance(ensemble, MLPEnsemble)
            and ensemble.activation in _NUMPY_ACTIVATIONS
            and all(p.device.type == "cpu" for p in ensemble.parameters())
        )

    def __call__(self, x: np.ndarray) -> np.ndarray:
        h = np.asarray(x, dtype=np.float32)
        last = len(self._layers) - 1
        for index, (weight, bias) in enumerate(self._layers):
            h = h @ weight
            h += bias
            if index < last:
                h = self._activation(h)
        return h
