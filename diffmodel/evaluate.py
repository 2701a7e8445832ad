"""Scoring a trained model on its domain's fixed test set, and reading its training times.

Every model is scored beside two references that need no model, so a number can be read
without a second table: the degraded input itself (noise-filled hole, grayscale), and for
inpainting a fill with each image's mean known colour. FID is None with a reason when the
Inception weights cannot be had; it is never replaced by another number.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tqdm import tqdm

from . import metrics
from .config import EvaluateConfig
from .data.prepared import PreparedDomain, to_tensor
from .inference import LoadedModel, Restoration, restore


@dataclass
class ModelEvaluation:
    metrics: dict
    first_batch: Restoration  # for the sample grid and the denoising-process strip


def evaluate_model(
    model: LoadedModel,
    data: PreparedDomain,
    cfg: EvaluateConfig,
    inception: torch.nn.Module | None,
    fid_unavailable_reason: str | None,
    keep_frames: int = 0,
    progress: bool = True,
    desc: str = "evaluate",
) -> ModelEvaluation:
    count = min(cfg.count, len(data.test))
    outputs, targets, conditions, masks = [], [], [], []
    first = None
    for start in tqdm(range(0, count, cfg.batch_size), desc=desc, disable=not progress or None, leave=False, unit="batch"):
        clean = to_tensor(data.test[start : min(start + cfg.batch_size, count)])
        result = restore(model, clean, cfg.seed + start, cfg.sampler, cfg.steps, cfg.eta, keep_frames if first is None else 0)
        first = first or result
        outputs.append(result.output.cpu())
        targets.append(result.target.cpu())
        conditions.append(result.condition.cpu())
        masks.append(result.mask.cpu())
    output, target, condition, mask = (torch.cat(x) for x in (outputs, targets, conditions, masks))

    generated_everywhere = bool((mask == 1).all())
    scores = metrics.image_metrics(output, target, None if generated_everywhere else mask)
    scores["input_psnr"] = round(metrics.psnr(condition, target).mean().item(), 4)
    if not generated_everywhere:
        scores["input_psnr_masked"] = round(metrics.psnr(condition, target, mask).mean().item(), 4)
        scores["mean_fill_psnr_masked"] = round(metrics.psnr(mean_fill(target, mask), target, mask).mean().item(), 4)
    if inception is not None:
        scores["fid"] = round(metrics.fid(target, output, inception), 4)
    else:
        scores["fid"] = None
        scores["fid_unavailable"] = fid_unavailable_reason
    scores["images"] = count
    scores["sampler"] = f"{cfg.sampler}-{cfg.steps}" if cfg.sampler == "ddim" else "ddpm"
    return ModelEvaluation(scores, first)


def mean_fill(images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Each hole filled with its image's mean known colour: the simplest inpainting a model must beat."""
    known = 1 - mask
    mean = (images * known).sum(dim=(2, 3), keepdim=True) / known.sum(dim=(2, 3), keepdim=True).clamp(min=1)
    return images * known + mean * mask


def training_timings(meta: dict) -> dict:
    """Epochs, time per epoch, total time and images seen, from a checkpoint's meta.json.

    Time is the sum of the epochs' own times, so it stays right across sessions and resumes
    (the gaps between sessions are not training time); validation is outside it.
    """
    history = meta.get("history", [])
    seconds = sum(row["seconds"] for row in history)
    return {
        "epochs": len(history),
        "seconds_per_epoch": round(seconds / len(history), 3) if history else None,
        "total_seconds": round(seconds, 3),
        "images_seen": sum(row["images"] for row in history),
        "sessions": len(meta.get("sessions", [])),
        "resumes": meta.get("resumes", 0),
        "initialisation": meta["parent"]["name"] if meta.get("parent") else "scratch",
        "final_val_loss": history[-1]["val_loss"] if history else None,
    }
