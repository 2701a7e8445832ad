"""Guided-diffusion style U-Net conditioned on the noise level gamma (Palette's network).

Input: the condition image concatenated with the noisy target (6 channels); output: the
predicted noise (3 channels). The noise level gamma is embedded sinusoidally (not the step
index t), so the same network works with any schedule or number of sampling steps.
A class-conditional model adds FineDiffusion's tiered class embedding to it.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..classes import ClassScheme
from ..config import ModelConfig

GAMMA_SCALE = 1000.0  # spreads gamma in [0, 1] over the frequencies of the embedding


def noise_level_embedding(gamma: torch.Tensor, dim: int) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=gamma.device) / half)
    angles = GAMMA_SCALE * gamma.float()[:, None] * freqs[None]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


class TieredClassEmbedding(nn.Module):
    """FineDiffusion's tiered class embedder: a fine-class and a superclass embedding, each with a
    last "no label" row that NO_LABEL (-1) selects. Zero at start, so a model given one adds
    nothing until it learns: a child of a parent without classes starts as its parent."""

    def __init__(self, classes: int, superclasses: int, dim: int):
        super().__init__()
        self.fine = nn.Embedding(classes + 1, dim)
        self.superclass = nn.Embedding(superclasses + 1, dim)
        nn.init.zeros_(self.fine.weight)
        nn.init.zeros_(self.superclass.weight)

    def forward(self, fine: torch.Tensor, superclass: torch.Tensor) -> torch.Tensor:
        def row(table: nn.Embedding, labels: torch.Tensor) -> torch.Tensor:
            return table(torch.where(labels < 0, table.num_embeddings - 1, labels))

        return row(self.fine, fine) + row(self.superclass, superclass)


Labels = tuple[torch.Tensor, torch.Tensor]  # (fine, superclass) class indices per image; -1: no label


def label_tensors(classes: ClassScheme, fine: np.ndarray, device: str | torch.device,
                  superclass: np.ndarray | None = None) -> Labels:
    """Labels for fine-class indices (NO_LABEL allowed); the superclass follows from the fine class unless given."""
    fine = np.array(fine, np.int64)  # a copy: torch.from_numpy warns on a read-only memmap slice
    superclass = classes.superclass_labels(fine) if superclass is None else np.array(superclass, np.int64)
    return torch.from_numpy(fine).to(device), torch.from_numpy(superclass).to(device)


class ResBlock(nn.Module):
    def __init__(self, channels_in: int, channels_out: int, emb_dim: int, groups: int, dropout: float):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, channels_in)
        self.conv1 = nn.Conv2d(channels_in, channels_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * channels_out)  # scale and shift, as in guided-diffusion
        self.norm2 = nn.GroupNorm(groups, channels_out)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(channels_out, channels_out, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)  # each block starts as the identity
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(channels_in, channels_out, 1) if channels_in != channels_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(F.silu(emb))[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class Attention(nn.Module):
    def __init__(self, channels: int, head_channels: int, groups: int):
        super().__init__()
        self.heads = max(1, channels // head_channels)
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        qkv = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w)
        q, k, v = qkv.transpose(-1, -2).unbind(1)  # each (b, heads, hw, head_dim)
        y = F.scaled_dot_product_attention(q, k, v)
        return x + self.out(y.transpose(-1, -2).reshape(b, c, h, w))


class Level(nn.Module):
    """Residual blocks (and attention) at one resolution."""

    def __init__(self, widths: list[tuple[int, int]], emb_dim: int, attention: bool, cfg: ModelConfig, dropout: float):
        super().__init__()
        self.blocks = nn.ModuleList(ResBlock(i, o, emb_dim, cfg.groups, dropout) for i, o in widths)
        self.attns = nn.ModuleList(
            Attention(o, cfg.head_channels, cfg.groups) if attention else nn.Identity() for _, o in widths
        )


class UNet(nn.Module):
    def __init__(self, cfg: ModelConfig, image_size: int, dropout: float = 0.0, in_channels: int = 6, out_channels: int = 3,
                 classes: ClassScheme | None = None):
        super().__init__()
        self.cfg = cfg
        ch = cfg.channels
        emb_dim = 4 * ch
        self.embed = nn.Sequential(nn.Linear(ch, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        conditional = classes is not None and classes.conditional
        self.class_embed = TieredClassEmbedding(len(classes.classes), len(classes.superclasses), emb_dim) if conditional else None
        self.stem = nn.Conv2d(in_channels, ch, 3, padding=1)

        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        skips, width, res = [ch], ch, image_size
        for level, mult in enumerate(cfg.channel_mults):
            out = ch * mult
            widths = []
            for _ in range(cfg.blocks_per_level):
                widths.append((width, out))
                width = out
                skips.append(width)
            self.down.append(Level(widths, emb_dim, res in cfg.attention_resolutions, cfg, dropout))
            last = level == len(cfg.channel_mults) - 1
            self.downsample.append(nn.Identity() if last else nn.Conv2d(width, width, 3, stride=2, padding=1))
            if not last:
                skips.append(width)
                res //= 2

        self.mid = Level([(width, width), (width, width)], emb_dim, True, cfg, dropout)
        self.mid.attns[1] = nn.Identity()  # block, attention, block

        self.up, self.upsample = nn.ModuleList(), nn.ModuleList()
        for level, mult in reversed(list(enumerate(cfg.channel_mults))):
            out = ch * mult
            widths = []
            for _ in range(cfg.blocks_per_level + 1):
                widths.append((width + skips.pop(), out))
                width = out
            self.up.append(Level(widths, emb_dim, res in cfg.attention_resolutions, cfg, dropout))
            first = level == 0
            self.upsample.append(nn.Identity() if first else nn.Conv2d(width, width, 3, padding=1))
            if not first:
                res *= 2

        self.head = nn.Sequential(nn.GroupNorm(cfg.groups, width), nn.SiLU(), nn.Conv2d(width, out_channels, 3, padding=1))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def forward(self, x: torch.Tensor, gamma: torch.Tensor, labels: Labels | None = None) -> torch.Tensor:
        """Labels are ignored by a model without classes; a model with classes given none sees "no label"."""
        emb = self.embed(noise_level_embedding(gamma, self.cfg.channels))
        if self.class_embed is not None:
            if labels is None:
                none = torch.full((x.shape[0],), -1, dtype=torch.long, device=x.device)
                labels = (none, none)
            emb = emb + self.class_embed(*labels)
        h = self.stem(x)
        skips = [h]
        for level, downsample in zip(self.down, self.downsample):
            for block, attn in zip(level.blocks, level.attns):
                h = attn(block(h, emb))
                skips.append(h)
            if not isinstance(downsample, nn.Identity):
                h = downsample(h)
                skips.append(h)
        h = self.mid.attns[0](self.mid.blocks[0](h, emb))
        h = self.mid.blocks[1](h, emb)
        for level, upsample in zip(self.up, self.upsample):
            for block, attn in zip(level.blocks, level.attns):
                h = attn(block(torch.cat([h, skips.pop()], dim=1), emb))
            if not isinstance(upsample, nn.Identity):
                h = upsample(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.head(h)

    def set_dropout(self, p: float) -> None:
        """Dropout is a training choice, not part of the architecture (the paper raises it for short subsets)."""
        for module in self.modules():
            if isinstance(module, nn.Dropout):
                module.p = p


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
