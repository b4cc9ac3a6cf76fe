"""Multi-layer perceptrons, and a numpy forward pass for acting on CPU."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
}

_NUMPY_ACTIVATIONS: dict[type[nn.Module], Callable[[np.ndarray], np.ndarray]] = {
    nn.ReLU: lambda x: np.maximum(x, 0.0, out=x),
    nn.Tanh: lambda x: np.tanh(x, out=x),
}


def mlp(
    in_features: int, hidden_sizes: Sequence[int], out_features: int, activation: str
) -> nn.Sequential:
    """Linear layers with `activation` between them and none after the output."""
    layers: list[nn.Module] = []
    width = in_features
    for hidden in hidden_sizes:
        layers += [nn.Linear(width, hidden), ACTIVATIONS[activation]()]
        width = hidden
    layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)


class NumpyMLP:
    """`network(x)` computed by numpy on the network's own weight memory (no copy).

    Acting on a handful of observations is dominated by torch's per-call overhead;
    numpy does the same arithmetic several times faster there. The views follow
    in-place weight updates (optimiser steps, load_state_dict) but not a network
    whose parameters are re-created or moved, so build this after such changes.
    """

    def __init__(self, network: nn.Module) -> None:
        self._steps: list[tuple[np.ndarray, np.ndarray] | Callable[[np.ndarray], np.ndarray]] = []
        for module in network.children():
            if isinstance(module, nn.Linear):
                weight_t = module.weight.detach().numpy().T
                self._steps.append((weight_t, module.bias.detach().numpy()))
            else:
                self._steps.append(_NUMPY_ACTIVATIONS[type(module)])

    @staticmethod
    def supports(network: nn.Module) -> bool:
        """True for a CPU Sequential of Linear layers and numpy-known activations."""
        return (
            isinstance(network, nn.Sequential)
            and all(isinstance(m, nn.Linear) or type(m) in _NUMPY_ACTIVATIONS for m in network)
            and all(p.device.type == "cpu" for p in network.parameters())
        )

    def __call__(self, x: np.ndarray) -> np.ndarray:
        h = np.asarray(x, dtype=np.float32)
        for step in self._steps:
            if isinstance(step, tuple):
                weight_t, bias = step
                h = h @ weight_t
                h += bias
            else:
                h = step(h)
        return h
