"""Every random number generator training draws from, saved and restored as tensors (weights_only loads):
torch's global one (initial weights, dropout), the loop's own generator (masks, noise levels, noise,
label dropout), Python's and NumPy's. Restoring all of them is what makes a resumed run bitwise the
uninterrupted one on the CPU."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> torch.Generator:
    """Seed the global generators; returns the loop's own generator (seeded seed + 1)."""
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    return torch.Generator().manual_seed(seed + 1)


def rng_state(generator: torch.Generator) -> dict:
    py_version, py_internal, py_gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "generator": generator.get_state(),
        "python": torch.tensor(py_internal, dtype=torch.int64),
        "python_gauss": py_gauss,
        "numpy": torch.from_numpy(np_keys.astype(np.int64)),
        "numpy_pos": np_pos,
        "numpy_gauss": (np_has_gauss, np_gauss),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict, generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    generator.set_state(state["generator"])
    random.setstate((3, tuple(state["python"].tolist()), state.get("python_gauss")))
    np_has_gauss, np_gauss = state.get("numpy_gauss", (0, 0.0))
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32), state["numpy_pos"], np_has_gauss, np_gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
