"""Convolutional networks for image observations: DQN's Q-network (seed 004's pixel
DQN, the Nature DQN), PPO's, A2C's and REINFORCE's policy and value, and the encoder
in front of DDPG's, TD3's and SAC's actor and critic ensembles.

Input: uint8 images (C, H, W), a frame stack's frames as its channels (Atari's
(4, 84, 84)), or frame pairs (2, C, H, W) of the previous and current image, read as
their difference (the tutorial's `current_screen - last_screen`); pixels are scaled
to [0, 1] here. Each convolution is followed by BatchNorm (optional) and the
activation, then come the fully connected layers (Nature DQN's 512), and a linear
head gives the outputs (a value per action; a policy's logits and its value).
BatchNorm's running statistics are buffers: they are in the state dict (so in
checkpoints), and acting and evaluation use them (eval mode); only DQN switches modes,
so the other algorithms refuse BatchNorm (registry.py's `batch_norm`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from rl_runner.config.schema import CNNConfig, MLPConfig
from rl_runner.networks.ensemble import MLPEnsemble
from rl_runner.networks.mlp import ACTIVATIONS, mlp


def _convolutions(obs_shape: Sequence[int], config: CNNConfig) -> tuple[list[nn.Module], int]:
    """The convolutions (each with its BatchNorm and activation) and a flatten, and the
    width of the features they give."""
    in_channels, height, width = obs_shape[-3:]
    activation = ACTIVATIONS[config.activation.value]
    layers: list[nn.Module] = []
    for out_channels, kernel, stride in config.layers():
        layers.append(nn.Conv2d(in_channels, out_channels, kernel, stride))
        if config.batch_norm:
            layers.append(nn.BatchNorm2d(out_channels))
        layers.append(activation())
        in_channels = out_channels
    layers.append(nn.Flatten())
    return layers, in_channels * config.output_size(height) * config.output_size(width)


def _scaled_images(obs: torch.Tensor, frame_pairs: bool) -> torch.Tensor:
    """uint8 pixels to [0, 1] (a frame pair to its difference), channels last: oneDNN's
    convolutions on the CPU train the Nature CNN 1.5x as fast in this layout
    (benchmarks/atari_speed.py)."""
    x = obs.float() / 255.0
    if frame_pairs:
        x = x[:, 1] - x[:, 0]
    return x.contiguous(memory_format=torch.channels_last)


class ConvNetwork(nn.Module):
    def __init__(self, obs_shape: Sequence[int], config: CNNConfig, num_outputs: int) -> None:
        super().__init__()
        self.frame_pairs = len(obs_shape) == 4
        layers, width = _convolutions(obs_shape, config)
        activation = ACTIVATIONS[config.activation.value]
        for size in config.hidden_sizes:
            layers += [nn.Linear(width, size), activation()]
            width = size
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(width, num_outputs)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(_scaled_images(obs, self.frame_pairs)))


def body(obs_shape: tuple[int, ...], network: MLPConfig | CNNConfig, outputs: int) -> nn.Module:
    """An MLP over flat observations, or a convolutional network over images."""
    if isinstance(network, CNNConfig):
        return ConvNetwork(obs_shape, network, outputs)
    return mlp(obs_shape[0], network.hidden_sizes, outputs, network.activation.value)


class ConvEnsemble(nn.Module):
    """An `MLPEnsemble` (network.hidden_sizes, then the outputs) over the features of
    one set of convolutions that its members share: DDPG's, TD3's and SAC's actor, and
    their twin critics, which read an action beside the image features."""

    def __init__(
        self,
        obs_shape: Sequence[int],
        config: CNNConfig,
        out_features: int,
        members: int = 1,
        join_features: int = 0,
    ) -> None:
        super().__init__()
        self.frame_pairs = len(obs_shape) == 4
        layers, width = _convolutions(obs_shape, config)
        self.encoder = nn.Sequential(*layers)
        self.heads = MLPEnsemble(
            width,
            config.hidden_sizes,
            out_features,
            config.activation.value,
            members,
            join_features,
        )
        self.members = members

    def forward(
        self,
        x: torch.Tensor,
        join: torch.Tensor | None = None,
        first: int | None = None,
        detach_weights: bool = False,
    ) -> torch.Tensor:
        """As `MLPEnsemble.forward`; with `detach_weights` the encoder learns nothing
        either (an actor's loss through the critic)."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not detach_weights):
            features = self.encoder(_scaled_images(x, self.frame_pairs))
        return self.heads(features, join, first, detach_weights)


@torch.no_grad()
def copy_buffers(target: nn.Module, source: nn.Module, tau: float) -> None:
    """A target network's buffers (BatchNorm statistics) follow the online network's like
    its weights: floating ones by tau, counters copied."""
    for target_buffer, source_buffer in zip(target.buffers(), source.buffers(), strict=True):
        if target_buffer.is_floating_point() and tau < 1.0:
            target_buffer.lerp_(source_buffer, tau)
        else:
            target_buffer.copy_(source_buffer)
