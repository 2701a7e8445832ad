"""Scoring a trained model on its domain's fixed test set, and reading its training times.

Every model is scored beside two references that need no model, so a number can be read
without a second table: the degraded input itself (noise-filled hole, grayscale), and for
inpainting a fill with each image's mean known colour. FID is None with a reason when the
Inception weights cannot be had or the distance fails numerically; it is never replaced by
another number. FID is computed on whatever number of test images is asked for: below a few
thousand it is biased upwards and only comparable between models scored on the same count,
which is why `images` stands beside it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from ..config import EvaluateConfig
from ..data.prepared import PreparedDomain
from ..data.tensors import to_tensor
from ..model.diffusion import Guidance
from ..model.inference import LoadedModel, Restoration, restore
from . import metrics
from .swd import swd


@dataclass
class ModelEvaluation:
    metrics: dict
    first_batch: Restoration  # for the sample grid and the denoising-process strip
    output: torch.Tensor  # every output image, (count, 3, H, W) in [-1, 1]


def evaluate_model(
    model: LoadedModel,
    data: PreparedDomain,
    cfg: EvaluateConfig,
    inception: torch.nn.Module | None,
    fid_unavailable_reason: str | None,
    keep_frames: int = 0,
    progress: bool = True,
    desc: str = "evaluate",
    fine: np.ndarray | None = None,
    superclass: np.ndarray | None = None,
    guidance: Guidance | None = None,
) -> ModelEvaluation:
    """Restore the first cfg.count test images. A class-conditional model is given each image's
    class (or `fine`, and `superclass` when not the fine class's) and guided as cfg says (or `guidance`)."""
    count = min(cfg.count, len(data.test))
    fine = np.asarray(data.labels["test"][:count]) if fine is None else np.asarray(fine)
    guidance = guidance or Guidance(cfg.guidance, cfg.guidance_scale)
    outputs, targets, conditions, masks = [], [], [], []
    first, sampling_seconds = None, 0.0
    for start in tqdm(range(0, count, cfg.batch_size), desc=desc, disable=not progress or None, leave=False, unit="batch"):
        stop = min(start + cfg.batch_size, count)
        clean = to_tensor(data.test[start:stop])
        started = time.perf_counter()
        result = restore(model, clean, cfg.seed + start, cfg.sampler, cfg.steps.for_task(model.task.name), cfg.eta, keep_frames if first is None else 0,
                         fine[start:stop], guidance, None if superclass is None else superclass[start:stop])
        sampling_seconds += time.perf_counter() - started
        first = first or result
        outputs.append(result.output.cpu())
        targets.append(result.target.cpu())
        conditions.append(result.condition.cpu())
        masks.append(result.mask.cpu())
    output, target, condition, mask = (torch.cat(x) for x in (outputs, targets, conditions, masks))

    generated_everywhere = bool((mask == 1).all())
    scores = metrics.image_metrics(output, target, None if generated_everywhere else mask)
    scores["swd"] = round(swd(target, output), 2)
    scores["input_psnr"] = round(metrics.psnr(condition, target).mean().item(), 4)
    scores["input_swd"] = round(swd(target, condition), 2)
    if not generated_everywhere:
        scores["input_psnr_masked"] = round(metrics.psnr(condition, target, mask).mean().item(), 4)
        scores["mean_fill_psnr_masked"] = round(metrics.psnr(mean_fill(target, mask), target, mask).mean().item(), 4)
    fid, fid_reason = None, fid_unavailable_reason
    if inception is not None:
        fid, fid_reason = metrics.fid_or_reason(target, output, inception, device=next(inception.parameters()).device)
    scores["fid"] = None if fid is None else round(fid, 4)
    if fid is None:
        scores["fid_unavailable"] = fid_reason
    scores["images"] = count
    scores["sampling_seconds_per_image"] = round(sampling_seconds / count, 4)
    scores["sampler"] = cfg.sampler_name(model.task.name)
    if model.conditional:
        scores["guidance"] = guidance.kind if guidance.kind == "none" else f"{guidance.kind} {guidance.scale:g}"
    return ModelEvaluation(scores, first, output)


def psnr_key(task: str) -> str:
    """The PSNR that measures a task: in the hole for inpainting, over the image otherwise."""
    return "psnr_masked" if task == "inpainting" else "psnr"


def headline(task: str, scores: dict) -> dict:
    """A model's quality as one row of `dvc metrics show`: PSNR (in the hole for inpainting), SWD
    and FID. Its training (epochs, seconds, validation loss) is the row of its live view, written
    by the training stage from the same history (stages/live.py). Everything else stays in
    scores.json and timings.json: few columns, so the table fits a 120-column terminal."""
    return {"psnr": scores[psnr_key(task)], "swd": scores["swd"], "fid": scores["fid"]}


def mean_fill(images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Each hole filled with its image's mean known colour: the simplest inpainting a model must beat."""
    known = 1 - mask
    mean = (images * known).sum(dim=(2, 3), keepdim=True) / known.sum(dim=(2, 3), keepdim=True).clamp(min=1)
    return images * known + mean * mask
