"""Config schemas (plain dataclasses) and their registration with Hydra."""
