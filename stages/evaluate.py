"""Stages `evaluate@chain` and `evaluate@baselines`: score models on their fixed test
sets, collect their training times, and draw their sample grids."""

from __future__ import annotations

from pathlib import Path
from typing import List

import torch
import typer

from diffmodel import metrics, report
from diffmodel.chain import CHAIN, MODELS
from diffmodel.checkpoint import WEIGHTS
from diffmodel.config import load_params
from diffmodel.data.prepared import load_domain
from diffmodel.evaluate import evaluate_model, headline, training_timings
from diffmodel.files import write_json
from diffmodel.inference import load_model
from stages.common import PARAMS_OPTION, QUIET_OPTION, fail, say, user_errors_are_one_line

PROCESS_FRAMES = 8
app = typer.Typer(add_completion=False)


@app.command()
@user_errors_are_one_line
def evaluate(
    models: List[str] = typer.Argument(None, help=f"Models to evaluate (default: the chain, {' '.join(CHAIN)})."),
    params_file: Path = PARAMS_OPTION,
    out: Path = typer.Option(Path("reports"), help="Where scores.json, timings.json and samples/ go."),
    metrics_dir: Path = typer.Option(Path("reports/metrics"), help="Where each model's MODEL.json (its DVC metrics) goes."),
    quiet: bool = QUIET_OPTION,
) -> None:
    """Sample each model's fixed test set (fixed masks and seeds; sampler and steps from
    params) and write OUT/scores.json - per model PSNR, SSIM, MAE (inpainting also on the
    masked region), SWD (a distribution metric that needs no download), colourfulness of
    output and ground truth, the same scores of the degraded input, and FID (null, with the
    reason, when it cannot be computed) - OUT/timings.json (epochs, seconds per epoch, total
    seconds, images seen, sessions), OUT/samples/MODEL.png (ground truth | condition | output),
    and METRICS_DIR/MODEL.json: the few numbers `dvc metrics show` lays out as MODEL's row.

    Reads params: evaluate.*. Reads models/MODEL/ and data/prepared/<domain>/test.npy.
    """
    models = models or CHAIN
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        fail(f"unknown model {unknown[0]!r} (choose from {', '.join(MODELS)})")
    cfg = load_params(params_file).evaluate
    device = "cuda" if torch.cuda.is_available() else "cpu"

    inception, fid_reason = None, None
    try:
        inception = metrics.load_inception(cfg.inception_weights).to(device)
    except metrics.FIDUnavailable as err:
        fid_reason = str(err)
        say(f"evaluate: FID will be null: {fid_reason}")

    scores, timings = {}, {}
    for name in models:
        spec = MODELS[name]
        model = load_model(spec.directory(), device)
        data = load_domain(Path("data/prepared") / spec.domain)
        frames = PROCESS_FRAMES if spec.task == "inpainting" else 0
        result = evaluate_model(model, data, cfg, inception, fid_reason, frames, progress=not quiet, desc=f"evaluate {name}")
        scores[name] = result.metrics
        timings[name] = {**training_timings(model.meta), "weights_bytes": (spec.directory() / WEIGHTS).stat().st_size}
        write_json(metrics_dir / f"{name}.json", headline(spec.task, scores[name], timings[name]))
        batch = result.first_batch
        condition_title = "masked input" if spec.task == "inpainting" else "grayscale input"
        report.sample_grid({"ground truth": batch.target, condition_title: batch.condition, "output": batch.output},
                           out / "samples" / f"{name}.png")
        if frames:
            labels = ["noise"] + [""] * (len(batch.frames) - 2) + ["output"]
            report.process_strip(batch.frames, out / "samples" / f"{name}_process.png", labels=labels)
        shown = {k: result.metrics[k] for k in ("psnr", "psnr_masked", "input_psnr", "input_psnr_masked", "ssim", "swd", "fid") if k in result.metrics}
        say(f"evaluate: {name}: " + ", ".join(f"{k} {v}" for k, v in shown.items()))

    write_json(out / "scores.json", scores)
    write_json(out / "timings.json", timings)
    say(f"evaluate: wrote {out / 'scores.json'}, {out / 'timings.json'}, {out / 'samples'}/ and "
        f"{', '.join(str(metrics_dir / f'{name}.json') for name in models)}")


if __name__ == "__main__":
    app()
