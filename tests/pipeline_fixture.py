"""A micro copy of the project in a temporary git repository, for real `dvc repro` runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

from diffmodel.classes import ClassScheme

ROOT = Path(__file__).resolve().parents[1]

MICRO_PARAMS = {
    "data": {
        "image_size": 16, "seed": 0, "num_subsets": 2,
        "faces": {"source": "synthetic", "train": 32, "val": 8, "test": 8},
        "landscapes": {"source": "synthetic", "classes": ["alpine", "red_rock", "summer_forest", "autumn_forest"],
                       "superclasses": {"mountain": ["alpine", "red_rock"], "forest": ["summer_forest", "autumn_forest"]},
                       "train": 32, "val": 8, "test": 8},
    },
    "model": {"channels": 8, "channel_mults": [1, 2], "blocks_per_level": 1, "attention_resolutions": [8],
              "head_channels": 8, "groups": 4},
    "diffusion": {"steps": 50, "beta_start": 0.0001, "beta_end": 0.2, "loss": "l2"},
    "train": {"epochs": 2, "subset_epochs": 1, "batch_size": 8, "warmup_steps": 2, "session_epochs": 1},
    "adapt": {"epochs": 1, "subset_epochs": 1, "batch_size": 8, "warmup_steps": 2, "session_epochs": 1, "method": "full"},
    "baselines": {"cap_factor": 3},
    "peft_twins": {"method": "lora", "lr": 0.016},
    "evaluate": {"sampler": "ddim", "steps": {"inpainting": 3, "colorization": 2}, "eta": 0.0, "count": 8, "batch_size": 8, "seed": 1},
    "samplers": {"ddim_steps": [2, 3], "count": 8},
    "guidance": {"model": "colorize_landscapes", "scales": [2.0], "count": 8},
}

FACES = ClassScheme.build("faces", (), None)  # the face domain's single class


def one_class(splits: dict) -> dict:
    """Labels for splits of a one-class domain (faces): all 0."""
    return {split: np.zeros(len(images), np.int64) for split, images in splits.items()}


class MicroProject:
    def __init__(self, path: Path):
        self.path = path
        bin_dir = str(Path(sys.executable).parent)
        self.env = {
            **os.environ,
            "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
            "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.com",
            "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.com",
            "DVC_NO_ANALYTICS": "1", "DIFFMODEL_QUIET": "1",
        }
        for name in ("dvc.yaml", ".dvcignore"):
            shutil.copy(ROOT / name, path / name)
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        for package in ("diffmodel", "stages", "configs"):
            shutil.copytree(ROOT / package, path / package, ignore=ignore)
        self.write_params(MICRO_PARAMS)
        self.run("git", "init", "-q")
        self.run("dvc", "init", "-q")
        self.run("dvc", "config", "core.analytics", "false")
        self.commit("micro project")

    def write_params(self, params: dict) -> None:
        (self.path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    def run(self, *args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
        result = subprocess.run(args, cwd=self.path, env=self.env, capture_output=True, text=True, **kwargs)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
        return result

    def commit(self, message: str) -> None:
        self.run("git", "add", "-A")
        self.run("git", "commit", "-qm", message, "--allow-empty")
