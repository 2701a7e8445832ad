"""Scoring a model on its test set (evaluate.py): the model-free references and the FID branch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from test_metrics import random_inception

from diffmodel.config import DiffusionConfig, EvaluateConfig, ModelConfig, SamplingSteps
from diffmodel.data.prepared import PreparedDomain
from diffmodel.evaluation import metrics
from diffmodel.evaluation.evaluate import evaluate_model, mean_fill
from diffmodel.model.diffusion import Schedule
from diffmodel.model.inference import LoadedModel
from diffmodel.model.tasks import make_task
from diffmodel.model.unet import UNet


def test_mean_fill_paints_each_hole_with_its_images_mean_known_colour():
    image = torch.zeros(1, 3, 2, 2)
    image[0, :, 0, 0] = torch.tensor([0.2, -0.4, 1.0])
    image[0, :, 0, 1] = torch.tensor([0.4, 0.0, 0.0])
    image[0, :, 1, 0] = torch.tensor([0.6, 0.4, -1.0])
    image[0, :, 1, 1] = torch.tensor([0.9, 0.9, 0.9])  # in the hole: its value must not count
    mask = torch.zeros(1, 1, 2, 2)
    mask[0, 0, 1, 1] = 1
    filled = mean_fill(image, mask)
    assert filled[0, :, 1, 1].tolist() == pytest.approx([0.4, 0.0, 0.0])  # (0.2+0.4+0.6)/3, (-0.4+0+0.4)/3, (1+0-1)/3
    assert torch.equal(filled * (1 - mask), image * (1 - mask))


def tiny_model(task: str) -> LoadedModel:
    torch.manual_seed(0)
    cfg = ModelConfig(channels=8, channel_mults=(1, 2), attention_resolutions=(), head_channels=8, groups=4)
    return LoadedModel(UNet(cfg, 16).eval(), Schedule(DiffusionConfig(steps=20)), make_task(task), 16, None)


def fake_test_split(count: int = 8) -> PreparedDomain:
    rng = np.random.default_rng(0)
    test = rng.integers(0, 256, (count, 16, 16, 3), dtype=np.uint8)
    return PreparedDomain(Path("."), {}, test[:0], test[:0], test, labels={"test": np.zeros(count, np.int64)})


CFG = EvaluateConfig(steps=SamplingSteps(inpainting=2, colorization=2), count=8, batch_size=4)


@pytest.fixture(scope="module")
def small_inception():
    return random_inception(feature_dim=64)


def test_the_inpainting_scores_carry_their_model_free_references(small_inception):
    data = fake_test_split()
    scores = evaluate_model(tiny_model("inpainting"), data, CFG, small_inception, None, progress=False).metrics
    assert scores["mean_fill_psnr_masked"] > scores["input_psnr_masked"]  # a flat fill beats a noise-filled hole
    assert scores["images"] == 8 and scores["sampler"] == "ddim-2"


@pytest.mark.parametrize("task, steps", [("inpainting", 3), ("colorization", 2)])
def test_each_task_is_sampled_with_its_own_number_of_ddim_steps(task, steps):
    cfg = EvaluateConfig(steps=SamplingSteps(inpainting=3, colorization=2), count=4, batch_size=4)
    model = tiny_model(task)
    calls = []
    model.network.register_forward_hook(lambda *_: calls.append(1))  # DDIM calls the network once per step
    scores = evaluate_model(model, fake_test_split(4), cfg, None, "offline", progress=False).metrics
    assert len(calls) == steps and scores["sampler"] == f"ddim-{steps}"


def test_fid_is_computed_with_an_inception_network(small_inception):
    scores = evaluate_model(tiny_model("colorization"), fake_test_split(), CFG, small_inception, None, progress=False).metrics
    assert isinstance(scores["fid"], float) and np.isfinite(scores["fid"]) and scores["fid"] >= 0
    assert "fid_unavailable" not in scores


def test_a_numerical_failure_of_fid_is_null_with_its_reason_not_a_crash(small_inception, monkeypatch):
    def complex_sqrtm(*args, **kwargs):
        raise ValueError("Imaginary component 12.5")  # what pytorch-fid raises when sqrtm goes complex

    import pytorch_fid.fid_score

    monkeypatch.setattr(pytorch_fid.fid_score, "calculate_frechet_distance", complex_sqrtm)
    scores = evaluate_model(tiny_model("colorization"), fake_test_split(), CFG, small_inception, None, progress=False).metrics
    assert scores["fid"] is None
    assert "could not be computed on 8 images" in scores["fid_unavailable"] and "Imaginary" in scores["fid_unavailable"]


def test_without_inception_fid_is_null_with_the_reason_given():
    scores = evaluate_model(tiny_model("colorization"), fake_test_split(), CFG, None, "no weights here", progress=False).metrics
    assert scores["fid"] is None and scores["fid_unavailable"] == "no weights here"
