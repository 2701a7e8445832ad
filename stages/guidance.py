"""Stage `guidance`: class-aware colorization - no label, superclass, class, CFG and superclass
guidance, and the wrong class on purpose - scored, plus one input coloured as every class."""

from __future__ import annotations

from pathlib import Path

import torch
import typer

from diffmodel import report
from diffmodel.chain import MODELS
from diffmodel.config import load_params
from diffmodel.files import write_json
from diffmodel.data.prepared import load_domain
from diffmodel.errors import UserError
from diffmodel.guidance_study import class_grid, study
from diffmodel.inference import load_model
from stages.common import PARAMS_OPTION, QUIET_OPTION, say, user_errors_are_one_line

app = typer.Typer(add_completion=False)


@app.command()
@user_errors_are_one_line
def guidance(
    params_file: Path = PARAMS_OPTION,
    out: Path = typer.Option(Path("reports/guidance"), help="Where scores.json and classes.png go."),
    quiet: bool = QUIET_OPTION,
) -> None:
    """Colour the first guidance.count test images of guidance.model (a class-conditional model)
    with no label, its superclass alone, its class, classifier-free and superclass guidance at
    each of guidance.scales, and the wrong class of its own superclass, with the same seeds.
    Writes OUT/scores.json (PSNR, SSIM, SWD, class accuracy and colour distance of a colour-only
    classifier, seconds per image, per setting) and OUT/classes.png (a few inputs coloured as
    every class, under evaluate.guidance).

    Reads params: guidance.*, evaluate.* (sampler, steps, eta, seed, batch size, default guidance).
    Reads models/MODEL/ and data/prepared/<domain>/.
    """
    params = load_params(params_file)
    cfg = params.guidance
    if cfg.model not in MODELS:
        raise UserError(f"guidance.model: unknown model {cfg.model!r} (choose from {', '.join(MODELS)})")
    spec = MODELS[cfg.model]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_model(spec.directory(), device)
    if not model.conditional:
        raise UserError(f"guidance.model: {cfg.model} has no classes to guide with (its domain {spec.domain} has one class)")
    data = load_domain(Path("data/prepared") / spec.domain)
    result = study(model, data, params.evaluate, cfg, progress=not quiet)
    for row in result["rows"]:
        say(f"guidance: {row['setting']}: PSNR {row['psnr']}, class accuracy {row['class_accuracy']}, "
            f"{row['seconds_per_image']} s/image")
    write_json(out / "scores.json", result)
    grid = report.sample_grid(class_grid(model, data, params.evaluate), out / "classes.png")
    say(f"guidance: wrote {out / 'scores.json'} and {grid}")


if __name__ == "__main__":
    app()
