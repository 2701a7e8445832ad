"""The paper's comparisons (Tables 1-6), measured: chain models against their baselines.

Every number comes from what the pipeline wrote (metrics, timings, loss histories); the
paper's own figures stand beside them for reference only. The paper *assumed* its
from-scratch colorization models (200 epochs at 90 min); here both sides are trained on
the same data, model and machine, for the same number of epochs.
"""

from __future__ import annotations

from dataclasses import dataclass


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


COMPARISONS = [
    Comparison("inpainting", "Face inpainting (paper Tables 1-2): incremental vs batch learning",
               "base", "baseline_batch", "psnr_masked",
               PaperRow(24.93, 200, 8, 26.6), PaperRow(25.55, 200, 90, 300), "batch learning"),
    Comparison("colorization_faces", "Face colorization (paper Tables 3-4): adapted from the inpainting base vs from scratch",
               "colorize_faces", "scratch_colorization", "psnr",
               PaperRow(14.18, 20, 8, 2.6), PaperRow(None, 200, 90, 300), "from scratch (paper: assumed)"),
    Comparison("colorization_landscapes", "Landscape colorization (paper Tables 5-6): adapted from face colorization vs from scratch",
               "colorize_landscapes", "scratch_landscapes", "psnr",
               PaperRow(17.95, 20, 10, 3.3), PaperRow(None, 200, 90, 300), "from scratch (paper: assumed)"),
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


def summarise(comparison: Comparison, metrics: dict, timings: dict, histories: dict) -> dict:
    """The ratios that carry the paper's claim for one target, from the pipeline's own files."""
    ours, base = comparison.ours, comparison.baseline
    quality = comparison.quality_metric
    summary = {
        "time_per_epoch_ratio": ratio(timings[base]["seconds_per_epoch"], timings[ours]["seconds_per_epoch"]),
        "total_time_ratio": ratio(timings[base]["total_seconds"], timings[ours]["total_seconds"]),
        f"{quality}_gain": difference(metrics[ours].get(quality), metrics[base].get(quality)),
        "ssim_gain": difference(metrics[ours].get("ssim"), metrics[base].get("ssim")),
        "fid_gain": difference(metrics[base].get("fid"), metrics[ours].get("fid")),  # positive: ours is better
        "final_val_loss_ours": timings[ours].get("final_val_loss"),
        "final_val_loss_baseline": timings[base].get("final_val_loss"),
    }
    if comparison.key != "inpainting":
        target = timings[ours].get("final_val_loss")
        reached = epochs_to_reach(histories.get(base, []), target) if target is not None else None
        summary["scratch_epochs_to_match_adapted_val_loss"] = reached
        summary["scratch_epochs_trained"] = timings[base]["epochs"]
    return summary


def _number(value, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def markdown_tables(metrics: dict, timings: dict, histories: dict) -> tuple[str, dict]:
    """(reports/tables.md text, summary.json content)."""
    lines = [
        "# Measured comparison tables",
        "",
        "Written by the `compare` stage from this run's `reports/metrics.json`, `reports/timings.json`,",
        "`reports/baselines/*.json` and `reports/loss/*.csv`. Times are training time only (sum of",
        "the epochs' own wall times, so pauses between sessions do not count). The paper's figures",
        "(CelebA-HQ / Places2 at 256x256 on a Colab GPU) are shown for reference, not comparable in scale.",
        "",
    ]
    summary = {}
    for comparison in COMPARISONS:
        quality = comparison.quality_metric
        summary[comparison.key] = summarise(comparison, metrics, timings, histories)
        lines += [f"## {comparison.title}", "",
                  f"| model | initialisation | epochs | s/epoch | total s | FID | {quality.upper().replace('_', ' ')} | SSIM "
                  f"| paper FID | paper epochs | paper min/epoch | paper total h |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for name, label, paper in ((comparison.ours, "ours (chain)", comparison.paper_ours),
                                   (comparison.baseline, comparison.baseline_label, comparison.paper_baseline)):
            t, m = timings[name], metrics[name]
            fid = _number(m.get("fid")) if m.get("fid") is not None else "n/a (no Inception weights)"
            lines.append(
                f"| {name} ({label}) | {t['initialisation']} | {t['epochs']} | {_number(t['seconds_per_epoch'])} "
                f"| {_number(t['total_seconds'], 1)} | {fid} | {_number(m.get(quality))} | {_number(m.get('ssim'), 3)} "
                f"| {_number(paper.fid)} | {paper.epochs} | {_number(paper.minutes_per_epoch, 0)} | {_number(paper.hours, 1)} |"
            )
        reference = metrics[comparison.ours]
        refs = [f"degraded input {quality.upper().replace('_', ' ')} {_number(reference.get('input_' + quality))}"]
        if "mean_fill_psnr_masked" in reference:
            refs.append(f"mean-colour fill {_number(reference['mean_fill_psnr_masked'])}")
        lines += ["", "Reference without a model: " + ", ".join(refs) + ".", ""]
        lines += [f"- {key}: {_number(value, 3)}" for key, value in summary[comparison.key].items()]
        lines.append("")
    return "\n".join(lines), summary
