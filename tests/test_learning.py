"""The model learns: a few hundred CPU steps on synthetic faces make inpainting work."""

import pytest
import torch

from diffmodel.config import DiffusionConfig, ModelConfig
from diffmodel.data.synthetic import render_faces
from diffmodel.data.tensors import to_tensor
from diffmodel.evaluation.evaluate import mean_fill
from diffmodel.evaluation.metrics import psnr
from diffmodel.model.diffusion import Schedule, sample, training_loss
from diffmodel.model.tasks import Inpainting
from diffmodel.model.unet import UNet

SIZE, STEPS, BATCH = 16, 300, 16


@pytest.mark.parametrize("prediction", ["v", "eps"])  # v: what params.yaml runs; eps: Palette, the paper's scale
def test_a_few_hundred_steps_lower_the_loss_and_inpaint_better_than_the_input(prediction):
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    faces = to_tensor(render_faces(512, SIZE, seed=0))
    test = to_tensor(render_faces(32, SIZE, seed=1))
    model = UNet(ModelConfig(channels=16, channel_mults=(1, 2), attention_resolutions=(8,), head_channels=16, groups=4), SIZE)
    schedule = Schedule(DiffusionConfig(steps=200, beta_end=0.1, prediction=prediction))
    task = Inpainting()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for step in range(STEPS):
        batch = faces[torch.randint(len(faces), (BATCH,), generator=generator)]
        condition, mask = task.degrade(batch, generator)
        loss = training_loss(model, schedule, batch, condition, mask, generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    first, last = sum(losses[:20]) / 20, sum(losses[-20:]) / 20
    assert last < 0.5 * first, (first, last)

    model.eval()
    condition, mask = task.degrade(test, torch.Generator().manual_seed(1))
    output, _ = sample(model, schedule, condition, mask, known=test * (1 - mask), steps=20,
                       generator=torch.Generator().manual_seed(2))
    model_psnr = psnr(output, test, mask).mean().item()
    input_psnr = psnr(condition, test, mask).mean().item()
    fill_psnr = psnr(mean_fill(test, mask), test, mask).mean().item()
    assert model_psnr > input_psnr + 5, (model_psnr, input_psnr, fill_psnr)
