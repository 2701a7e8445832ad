"""Stage `guidance`: class-aware colorization - no label, superclass, class, CFG and superclass
guidance, and the wrong class on purpose - scored, plus one input coloured as every class."""

from __future__ import annotations

from pathlib import Path

import typer

from diffmodel.chain import model_spec
from diffmodel.config import load_params
from diffmodel.data.prepared import load_domain
from diffmodel.devices import default_device
from diffmodel.errors import UserError, one_line_errors
from diffmodel.evaluation.guidance_study import class_grid, study
from diffmodel.files import write_json
from diffmodel.model.inference import load_model
from diffmodel.reporting import figures
from stages.common import PARAMS_OPTION, QUIET_OPTION, say

app = typer.Typer(add_completion=False)


@app.command()
@one_line_errors
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
    spec = model_spec(cfg.model, "guidance.model")
    model = load_model(spec.directory(), default_device())
    if not model.conditional:
        raise UserError(f"guidance.model: {cfg.model} has no classes to guide with (its domain {spec.domain} has one class)")
    data = load_domain(spec.data_directory())
    result = study(model, data, params.evaluate, cfg, progress=not quiet)
    for row in result["rows"]:
        say(f"guidance: {row['setting']}: PSNR {row['psnr']}, class accuracy {row['class_accuracy']}, "
            f"{row['seconds_per_image']} s/image")
    write_json(out / "scores.json", result)
    grid = figures.sample_grid(class_grid(model, data, params.evaluate), out / "classes.png")
    say(f"guidance: wrote {out / 'scores.json'} and {grid}")


if __name__ == "__main__":
    app()
