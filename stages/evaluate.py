"""Stages `evaluate@chain`, `evaluate@baselines` and `evaluate_peft`: score models on their fixed test
sets, collect their training times, and draw their sample grids."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from diffmodel.chain import CHAIN, model_spec
from diffmodel.checkpoints.store import WEIGHTS
from diffmodel.config import load_params
from diffmodel.data.prepared import load_domain
from diffmodel.devices import default_device
from diffmodel.errors import one_line_errors
from diffmodel.evaluation import metrics
from diffmodel.evaluation.evaluate import evaluate_model, headline
from diffmodel.files import write_json
from diffmodel.model.inference import load_model
from diffmodel.model.peft import paper_scale_shares
from diffmodel.reporting import figures
from stages.common import PARAMS_OPTION, QUIET_OPTION, say

PROCESS_FRAMES = 8
app = typer.Typer(add_completion=False)


@app.command()
@one_line_errors
def evaluate(
    models: List[str] = typer.Argument(None, help=f"Models to evaluate (default: the chain, {' '.join(CHAIN)})."),
    params_file: Path = PARAMS_OPTION,
    out: Path = typer.Option(Path("reports"), help="Where scores.json, timings.json and samples/ go."),
    metrics_dir: Path = typer.Option(Path("reports/metrics"), help="Where each model's MODEL.json (its DVC metrics) goes."),
    peft_share_of: Optional[Path] = typer.Option(None, help="Also write OUT/paper_scale.json: what each PEFT method trains "
                                                 "of the U-Net this params file describes (configs/paper.yaml), built, not estimated."),
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
    specs = [model_spec(name) for name in models or CHAIN]
    cfg = load_params(params_file).evaluate
    device = default_device()

    inception, fid_reason = metrics.inception_or_reason(cfg.inception_weights)
    if inception is None:
        say(f"evaluate: FID will be null: {fid_reason}")
    else:
        inception = inception.to(device)

    scores, timings = {}, {}
    for spec in specs:
        name = spec.name
        model = load_model(spec.directory(), device)
        data = load_domain(spec.data_directory())
        frames = PROCESS_FRAMES if spec.task == "inpainting" else 0
        result = evaluate_model(model, data, cfg, inception, fid_reason, frames, progress=not quiet, desc=f"evaluate {name}")
        scores[name] = result.metrics
        timings[name] = {**model.meta.timings(), "weights_bytes": (spec.directory() / WEIGHTS).stat().st_size}
        write_json(metrics_dir / f"{name}.json", headline(spec.task, scores[name]))
        batch = result.first_batch
        condition_title = "masked input" if spec.task == "inpainting" else "grayscale input"
        figures.sample_grid({"ground truth": batch.target, condition_title: batch.condition, "output": batch.output},
                            out / "samples" / f"{name}.png")
        if frames:
            labels = ["noise"] + [""] * (len(batch.frames) - 2) + ["output"]
            figures.process_strip(batch.frames, out / "samples" / f"{name}_process.png", labels=labels)
        shown = {k: result.metrics[k] for k in ("psnr", "psnr_masked", "input_psnr", "input_psnr_masked", "ssim", "swd", "fid") if k in result.metrics}
        say(f"evaluate: {name}: " + ", ".join(f"{k} {v}" for k, v in shown.items()))

    write_json(out / "scores.json", scores)
    write_json(out / "timings.json", timings)
    if peft_share_of is not None:
        write_json(out / "paper_scale.json", paper_scale_shares(load_params(peft_share_of)))
    say(f"evaluate: wrote {out / 'scores.json'}, {out / 'timings.json'}, {out / 'samples'}/ and "
        f"{', '.join(str(metrics_dir / f'{spec.name}.json') for spec in specs)}")


if __name__ == "__main__":
    app()
