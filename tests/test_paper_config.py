"""The paper-scale configuration the README tells people to copy: it loads, its U-Net is the size
this file says, one training step and one sampling step run at 256x256, and the README shows it
exactly as it is."""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from diffmodel.config import load_params
from diffmodel.model.diffusion import Schedule, sample
from diffmodel.model.peft import trainable_share
from diffmodel.model.tasks import make_task
from diffmodel.model.unet import count_parameters
from diffmodel.training import precision
from diffmodel.training.setup import build_model
from diffmodel.training.step import train_step

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "configs/paper.yaml"


def test_the_readme_shows_the_preset_as_it_is():
    readme = (ROOT / "README.md").read_text()
    assert f"```yaml\n{PAPER.read_text()}```" in readme


def test_the_preset_validates_and_its_unet_has_the_size_it_says():
    params = load_params(PAPER)
    assert params.data.image_size == 256 and params.diffusion.steps == 1200
    with torch.device("meta"):
        model = build_model(params.model, params.data.image_size)
    parameters = count_parameters(model)
    print(f"paper-scale U-Net: {parameters:,} parameters; {trainable_share(model, 'finediffusion')}")
    assert "58.1 M parameters here" in PAPER.read_text() and round(parameters / 1e6, 1) == 58.1
    # at this scale FineDiffusion's rule trains less than its share of DiT-XL/2
    assert trainable_share(model, "finediffusion").percent < 1.77


def test_one_training_step_and_one_sampling_step_at_256_pixels():
    params = load_params(PAPER)
    torch.manual_seed(0)
    model = build_model(params.model, params.data.image_size, params.train.dropout)
    ema = copy.deepcopy(model).requires_grad_(False)
    optimizer = torch.optim.Adam(model.parameters(), lr=params.train.lr)
    schedule, task = Schedule(params.diffusion), make_task("inpainting")
    images = torch.rand(1, 3, 256, 256) * 2 - 1
    generator = torch.Generator().manual_seed(0)
    in_use = precision.resolve(params.train.precision, torch.device("cpu"), params.model.channels)  # as the Trainer would here
    loss = train_step(model, ema, optimizer, [images], task, schedule, params.train, 0, generator, in_use)
    assert torch.isfinite(loss)
    condition, mask = task.degrade(images, generator)
    with torch.no_grad():
        output, _ = sample(ema.eval(), schedule, condition, mask, known=images * (1 - mask), steps=1, generator=generator)
    assert output.shape == images.shape and torch.isfinite(output).all()
