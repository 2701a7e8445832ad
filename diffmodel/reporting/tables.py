"""The paper's comparisons (Tables 1-6), measured: chain models against their baselines.

Every number comes from what the pipeline wrote (metrics, timings, loss histories); the
paper's own figures stand beside them for reference only. The paper *assumed* its
from-scratch colorization models (200 epochs at 90 min); here both sides are trained on
the same data, model and machine, for the same number of epochs.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..chain import MODELS


@dataclass(frozen=True)
class PaperRow:
    fid: float | None
    epochs: int
    minutes_per_epoch: float
    hours: float


@dataclass(frozen=True)
class Comparison:
    key: str  # in summary.json
    title: str
    ours: str  # the chain's model
    baseline: str
    quality_metric: str  # the PSNR that matters for this task
    paper_ours: PaperRow
    paper_baseline: PaperRow
    baseline_label: str
    row: str  # reports/metrics/<row>.json: this comparison's row in `dvc metrics show`


COMPARISONS = [
    Comparison("inpainting", "Face inpainting (paper Tables 1-2): incremental vs batch learning",
               "base", "baseline_batch", "psnr_masked",
               PaperRow(24.93, 200, 8, 26.6), PaperRow(25.55, 200, 90, 300), "batch learning", "vs_batch"),
    Comparison("colorization_faces", "Face colorization (paper Tables 3-4): adapted from the inpainting base vs from scratch",
               "colorize_faces", "scratch_colorization", "psnr",
               PaperRow(14.18, 20, 8, 2.6), PaperRow(None, 200, 90, 300), "from scratch (paper: assumed)", "vs_scratch_faces"),
    Comparison("colorization_landscapes", "Landscape colorization (paper Tables 5-6): adapted from face colorization vs from scratch",
               "colorize_landscapes", "scratch_landscapes", "psnr",
               PaperRow(17.95, 20, 10, 3.3), PaperRow(None, 200, 90, 300), "from scratch (paper: assumed)", "vs_scratch_landscapes"),
]


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 3)


def difference(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 4)


def epochs_to_reach(history: list[dict], target_loss: float) -> int | None:
    """First epoch whose validation loss is at or below `target_loss`; None if none is."""
    for row in history:
        if row["val_loss"] <= target_loss:
            return int(row["epoch"])
    return None


def seconds_to_epoch(history: list[dict], epoch: int) -> float:
    """Training seconds spent up to the end of `epoch`."""
    return sum(row["seconds"] for row in history if row["epoch"] <= epoch)


def ancestors(name: str) -> list[str]:
    """The chain models `name` was adapted from, nearest first (colorize_landscapes: colorize_faces, base)."""
    found, parent = [], MODELS[name].parent
    while parent:
        found.append(parent)
        parent = MODELS[parent].parent
    return found


def equal_quality(comparison: Comparison, timings: dict, histories: dict) -> dict:
    """How long the baseline took to reach the chain model's final validation loss, against the
    chain model's own training time (the paper's 300 h vs 26.6 h / 2.6 h / 3.3 h) and, for an
    adapted model, against its time plus its parents' (what the whole chain cost). A baseline
    that never got there gives only lower bounds, from the time it did train."""
    ours, base = timings[comparison.ours], timings[comparison.baseline]
    target = ours["final_val_loss"]
    history = histories.get(comparison.baseline, [])
    reached = epochs_to_reach(history, target) if target is not None else None
    trained = int(history[-1]["epoch"]) if history else base["epochs"]
    seconds = seconds_to_epoch(history, reached or trained)
    with_parents = ours["total_seconds"] + sum(timings[name]["total_seconds"] for name in ancestors(comparison.ours))
    result = {
        "target_val_loss": target,
        "reached": reached is not None,
        "baseline_epochs": reached if reached is not None else trained,
        "baseline_seconds": round(seconds, 1),
        "ours_epochs": ours["epochs"],
        "ours_seconds": round(ours["total_seconds"], 1),
    }
    key = "" if reached is not None else "_min"  # a lower bound when the baseline never got there
    result[f"epochs_x{key}"] = ratio(result["baseline_epochs"], ours["epochs"])
    result[f"time_x{key}"] = ratio(seconds, ours["total_seconds"])
    if ancestors(comparison.ours):
        result["ours_seconds_with_parents"] = round(with_parents, 1)
        result[f"time_x_total{key}"] = ratio(seconds, with_parents)
    return result


def summarise(comparison: Comparison, scores: dict, timings: dict, histories: dict) -> dict:
    """The numbers that carry the paper's claim for one target, from the pipeline's own files."""
    ours, base = comparison.ours, comparison.baseline
    quality = comparison.quality_metric
    return {
        "equal_quality": equal_quality(comparison, timings, histories),
        "time_per_epoch_ratio": ratio(timings[base]["seconds_per_epoch"], timings[ours]["seconds_per_epoch"]),
        f"{quality}_gain": difference(scores[ours].get(quality), scores[base].get(quality)),
        "ssim_gain": difference(scores[ours].get("ssim"), scores[base].get("ssim")),
        "swd_gain": difference(scores[base].get("swd"), scores[ours].get("swd")),  # positive: ours is better
        "fid_gain": difference(scores[base].get("fid"), scores[ours].get("fid")),  # positive: ours is better
    }


def metric_row(summary: dict) -> dict:
    """One comparison as a row of `dvc metrics show`: how many times the chain model's training time
    its baseline needed for the same validation loss (`time_x_min`: a lower bound, the baseline never
    got there). The ratio against the chain model with its parents' time stays in tables.md and
    summary.json: one column fewer, so the table fits a 120-column terminal."""
    return {key: summary["equal_quality"][key] for key in ("time_x", "time_x_min") if key in summary["equal_quality"]}


def equal_quality_sentence(comparison: Comparison, eq: dict) -> str:
    if eq["reached"]:
        text = (f"{comparison.baseline} reached {comparison.ours}'s validation loss {eq['target_val_loss']:.4f} after "
                f"{eq['baseline_epochs']} epochs and {eq['baseline_seconds']:.1f} s: {eq['time_x']:.2f}x the training time of "
                f"{comparison.ours} ({eq['ours_epochs']} epochs, {eq['ours_seconds']:.1f} s)")
        if "time_x_total" in eq:
            text += f", {eq['time_x_total']:.2f}x its time with its parents' ({eq['ours_seconds_with_parents']:.1f} s)"
    else:
        text = (f"{comparison.baseline} did not reach {comparison.ours}'s validation loss {eq['target_val_loss']:.4f} in "
                f"{eq['baseline_epochs']} epochs ({eq['baseline_seconds']:.1f} s): more than {eq['time_x_min']:.2f}x the training "
                f"time of {comparison.ours} ({eq['ours_epochs']} epochs, {eq['ours_seconds']:.1f} s)")
        if "time_x_total_min" in eq:
            text += f", more than {eq['time_x_total_min']:.2f}x with its parents' ({eq['ours_seconds_with_parents']:.1f} s)"
    return text + "."


def _number(value, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def markdown_tables(scores: dict, timings: dict, histories: dict) -> tuple[str, dict]:
    """(reports/tables.md text, summary.json content)."""
    lines = [
        "# Measured comparison tables",
        "",
        "Written by the `compare` stage from this run's `reports/scores.json`, `reports/timings.json`,",
        "`reports/baselines/*.json` and `reports/loss/*.csv`. Times are training time only (sum of",
        "the epochs' own wall times, so pauses between sessions do not count). Each baseline trains until its",
        "validation loss reaches its chain model's (equal quality) or its cap (`baselines.cap_factor`). SWD:",
        "sliced Wasserstein distance of Laplacian-pyramid patches to the test images (x1000, lower is better).",
        "The paper's figures (CelebA-HQ / Places2 at 256x256 on a Colab GPU) are for reference, not comparable in scale.",
        "",
    ]
    summary = {}
    for comparison in COMPARISONS:
        quality = comparison.quality_metric
        summary[comparison.key] = summarise(comparison, scores, timings, histories)
        lines += [f"## {comparison.title}", "",
                  f"| model | initialisation | epochs | s/epoch | total s | val loss | FID | {quality.upper().replace('_', ' ')} "
                  f"| SSIM | SWD | paper FID | paper epochs | paper min/epoch | paper total h |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for name, label, paper in ((comparison.ours, "ours (chain)", comparison.paper_ours),
                                   (comparison.baseline, comparison.baseline_label, comparison.paper_baseline)):
            t, m = timings[name], scores[name]
            fid = _number(m.get("fid")) if m.get("fid") is not None else "n/a"
            lines.append(
                f"| {name} ({label}) | {t['initialisation']} | {t['epochs']} | {_number(t['seconds_per_epoch'])} "
                f"| {_number(t['total_seconds'], 1)} | {_number(t.get('final_val_loss'), 4)} | {fid} | {_number(m.get(quality))} "
                f"| {_number(m.get('ssim'), 3)} | {_number(m.get('swd'), 1)} "
                f"| {_number(paper.fid)} | {paper.epochs} | {_number(paper.minutes_per_epoch, 0)} | {_number(paper.hours, 1)} |"
            )
        reference = scores[comparison.ours]
        refs = [f"degraded input {quality.upper().replace('_', ' ')} {_number(reference.get('input_' + quality))}"
                f" (SWD {_number(reference.get('input_swd'), 1)})"]
        if "mean_fill_psnr_masked" in reference:
            refs.append(f"mean-colour fill {_number(reference['mean_fill_psnr_masked'])}")
        paper_x = comparison.paper_baseline.hours / comparison.paper_ours.hours
        lines += ["", "Reference without a model: " + ", ".join(refs) + ".", "",
                  f"**Equal quality**: {equal_quality_sentence(comparison, summary[comparison.key]['equal_quality'])} "
                  f"Paper: {comparison.paper_baseline.hours:g} h against {comparison.paper_ours.hours:g} h, {paper_x:.1f}x"
                  f"{' (its baseline assumed, not trained)' if comparison.paper_baseline.fid is None else ''}.", ""]
        lines += [f"- {key}: {_number(value, 3)}" for key, value in summary[comparison.key].items() if key != "equal_quality"]
        lines.append("")
    return "\n".join(lines), summary


def sampler_table(samplers: dict) -> str:
    """reports/samplers.json as a markdown table per model."""
    lines = ["## Samplers: time per image against quality", "",
             "Stage `samplers`: the same test images and seeds for every setting; PSNR is in the hole for inpainting.",
             "PSNR and SSIM reward a blurry average, SWD (lower is better) does not: read them together.", ""]
    for model, rows in samplers.items():
        lines += [f"### {model}", "", "| sampler | steps | images | s/image | PSNR | SSIM | SWD |", "|---|---|---|---|---|---|---|"]
        lines += [f"| {r['sampler']} | {r['steps']} | {r['images']} | {_number(r['seconds_per_image'], 4)} | {_number(r['psnr'])} "
                  f"| {_number(r['ssim'], 3)} | {_number(r['swd'], 1)} |" for r in rows]
        lines.append("")
    return "\n".join(lines)
