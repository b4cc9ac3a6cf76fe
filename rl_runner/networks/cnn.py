"""A convolutional network for image observations: DQN's Q-network (seed 004's pixel
DQN, the Nature DQN), and PPO's and A2C's policy and value.

Input: uint8 images (C, H, W), a frame stack's frames as its channels (Atari's
(4, 84, 84)), or frame pairs (2, C, H, W) of the previous and current image, read as
their difference (the tutorial's `current_screen - last_screen`); pixels are scaled
to [0, 1] here. Each convolution is followed by BatchNorm (optional) and the
activation, then come the fully connected layers (Nature DQN's 512), and a linear
head gives the outputs (a value per action; a policy's logits and its value).
BatchNorm's running statistics are buffers: they are in the state dict (so in
checkpoints), and acting and evaluation use them (eval mode).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from rl_runner.config.schema import CNNConfig
from rl_runner.networks.mlp import ACTIVATIONS


class ConvNetwork(nn.Module):
    def __init__(self, obs_shape: Sequence[int], config: CNNConfig, num_outputs: int) -> None:
        super().__init__()
        self.frame_pairs = len(obs_shape) == 4
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
        width = in_channels * config.output_size(height) * config.output_size(width)
        for size in config.hidden_sizes:
            layers += [nn.Linear(width, size), activation()]
            width = size
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(width, num_outputs)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = obs.float() / 255.0
        if self.frame_pairs:
            x = x[:, 1] - x[:, 0]
        # channels last: oneDNN's convolutions on the CPU train the Nature CNN 1.5x as
        # fast in this layout (benchmarks/atari_speed.py)
        return self.head(self.features(x.contiguous(memory_format=torch.channels_last)))


@torch.no_grad()
def copy_buffers(target: nn.Module, source: nn.Module, tau: float) -> None:
    """A target network's buffers (BatchNorm statistics) follow the online network's like
    its weights: floating ones by tau, counters copied."""
    for target_buffer, source_buffer in zip(target.buffers(), source.buffers(), strict=True):
        if target_buffer.is_floating_point() and tau < 1.0:
            target_buffer.lerp_(source_buffer, tau)
        else:
            target_buffer.copy_(source_buffer)
