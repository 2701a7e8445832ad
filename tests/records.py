"""Checkpoint records for tests: the smallest valid meta.json a test needs, as the code writes it."""

from __future__ import annotations

from diffmodel.checkpoints.meta import ModelMeta, architecture
from diffmodel.config import DiffusionConfig, ModelConfig, TrainConfig, as_plain_dict


def record(name: str = "model", task: str = "inpainting", model: ModelConfig = ModelConfig(), image_size: int = 32,
           diffusion: DiffusionConfig = DiffusionConfig(), **changes) -> ModelMeta:
    meta = ModelMeta(name=name, task=task, domain="faces", architecture=architecture(model, image_size),
                     diffusion=as_plain_dict(diffusion), schedule=as_plain_dict(TrainConfig()), fingerprint="f" * 16,
                     fingerprint_parts={}, data={"path": "data", "content_hash": "0" * 16}, epochs=1)
    return meta.replace(**changes)
