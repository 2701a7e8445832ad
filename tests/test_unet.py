import pytest
import torch
from torch import nn

from diffmodel.config import ModelConfig
from diffmodel.model.unet import Attention, UNet, count_parameters, noise_level_embedding


def small_config(channel_mults=(1, 2, 2), blocks_per_level=1, attention_resolutions=(8,)):
    return ModelConfig(channels=16, channel_mults=channel_mults, blocks_per_level=blocks_per_level,
                       attention_resolutions=attention_resolutions, head_channels=8, groups=4)


def inputs(batch=2, size=16, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 6, size, size, generator=generator), torch.rand(batch, generator=generator)


def wake_zero_initialised_layers(model):
    """The output convs start at zero (each block is the identity); give them small weights so
    every path carries signal and gradient."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            if not p.any():
                p.copy_(0.05 * torch.randn(p.shape, generator=generator))


CONFIGS = [
    # image size, channel_mults, blocks_per_level, attention resolutions
    (16, (1, 2), 1, ()),
    (16, (1, 2), 2, (8,)),
    (32, (1, 2, 2), 1, (8,)),
    (32, (1, 2, 2), 2, (16, 8)),
    (64, (1, 1, 2, 2), 1, ()),
    (64, (1, 1, 2, 2), 2, (16,)),
]


@pytest.mark.parametrize("size,mults,blocks,attention", CONFIGS)
def test_output_shape_and_attention_placement(size, mults, blocks, attention):
    model = UNet(small_config(mults, blocks, attention), image_size=size)
    seen = []
    for module in model.modules():
        if isinstance(module, Attention):
            module.register_forward_hook(lambda m, args, out: seen.append(args[0].shape[-1]))
    x, gamma = inputs(batch=2, size=size)
    out = model(x, gamma)
    assert out.shape == (2, 3, size, size)
    assert torch.isfinite(out).all()
    # attention runs at the resolutions asked for (down: blocks, up: blocks + 1), plus once in the middle
    lowest = size // 2 ** (len(mults) - 1)
    expected = sorted([lowest] + [res for res in attention for _ in range(2 * blocks + 1)])
    assert sorted(seen) == expected


def test_fresh_network_predicts_zero_noise():
    model = UNet(small_config(), image_size=16)
    assert torch.equal(model(*inputs()), torch.zeros(2, 3, 16, 16))


@pytest.mark.parametrize("size,mults,blocks,attention", [CONFIGS[1], CONFIGS[3]])
def test_every_parameter_is_wired_into_the_output(size, mults, blocks, attention):
    torch.manual_seed(0)
    model = UNet(small_config(mults, blocks, attention), image_size=size)
    wake_zero_initialised_layers(model)
    x, gamma = inputs(size=size)
    model(x, gamma).square().mean().backward()
    dead = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert dead == []


def test_training_from_the_zero_init_reaches_every_parameter():
    # Step 1 only moves the zero output conv; step 2 then reaches the zero convs at the end of
    # each block; by the third backward every parameter gets a gradient.
    torch.manual_seed(0)
    model = UNet(small_config(), image_size=16)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, gamma = inputs()
    target = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    for _ in range(3):
        optimizer.zero_grad()
        (model(x, gamma) - target).square().mean().backward()
        optimizer.step()
    dead = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert dead == []


def test_set_dropout_changes_every_dropout_module():
    model = UNet(small_config(blocks_per_level=2), image_size=16, dropout=0.1)
    dropouts = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert len(dropouts) > 5 and all(m.p == 0.1 for m in dropouts)
    model.set_dropout(0.4)
    assert all(m.p == 0.4 for m in dropouts)
    wake_zero_initialised_layers(model)
    x, gamma = inputs()
    model.train()
    assert not torch.equal(model(x, gamma), model(x, gamma))  # dropout is active
    model.set_dropout(0.0)
    assert torch.equal(model(x, gamma), model(x, gamma))


def test_dropout_is_not_part_of_the_weights():
    a = UNet(small_config(), image_size=16, dropout=0.0)
    b = UNet(small_config(), image_size=16, dropout=0.3)
    assert a.state_dict().keys() == b.state_dict().keys()
    assert count_parameters(a) == count_parameters(b)


def test_noise_level_embedding_tells_gammas_apart():
    gammas = torch.tensor([1.0, 0.9999, 0.5, 0.01, 0.0])
    emb = noise_level_embedding(gammas, 32)
    assert emb.shape == (5, 32)
    assert emb.abs().max() <= 1
    distances = torch.cdist(emb, emb)
    off_diagonal = distances[~torch.eye(5, dtype=torch.bool)]
    assert off_diagonal.min() > 1e-2


def test_network_output_depends_on_gamma():
    torch.manual_seed(0)
    model = UNet(small_config(), image_size=16)
    wake_zero_initialised_layers(model)
    x, _ = inputs(batch=1)
    out_low = model(x, torch.tensor([0.1]))
    out_high = model(x, torch.tensor([0.9]))
    assert (out_low - out_high).abs().mean() > 1e-3
