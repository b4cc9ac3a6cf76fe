"""Seeding and RNG state capture, in forms a weights-only checkpoint can hold.

`torch.load(weights_only=True)` accepts tensors, containers and Python scalars, so
numpy arrays travel as tensors and numpy generators as their bit-generator dicts.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def seed_global_rngs(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators (network init uses torch's)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def global_rng_state() -> dict[str, Any]:
    legacy_name, keys, pos, has_gauss, cached_gaussian = np.random.get_state(legacy=True)
    assert isinstance(keys, np.ndarray)  # the legacy form is a tuple with the key array
    return {
        "python": random.getstate(),
        "numpy": {
            "name": legacy_name,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "torch": torch.get_rng_state(),
    }


def restore_global_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    legacy = state["numpy"]
    np.random.set_state(
        (
            legacy["name"],
            legacy["keys"].numpy().astype(np.uint32),
            legacy["pos"],
            legacy["has_gauss"],
            legacy["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"])


def generator_state(generator: np.random.Generator) -> dict[str, Any]:
    return dict(generator.bit_generator.state)


def restore_generator_state(generator: np.random.Generator, state: dict[str, Any]) -> None:
    generator.bit_generator.state = state
