"""Stage `samplers`: which sampler and how many steps - time per image against quality."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer

from diffmodel.chain import model_spec
from diffmodel.config import SamplingSteps, load_params
from diffmodel.data.prepared import load_domain
from diffmodel.devices import default_device
from diffmodel.errors import one_line_errors
from diffmodel.evaluation.evaluate import evaluate_model, psnr_key
from diffmodel.files import write_json
from diffmodel.model.inference import load_model
from stages.common import PARAMS_OPTION, QUIET_OPTION, say

app = typer.Typer(add_completion=False)


@app.command()
@one_line_errors
def samplers(
    params_file: Path = PARAMS_OPTION,
    out: Path = typer.Option(Path("reports/samplers.json"), help="Where the comparison goes."),
    quiet: bool = QUIET_OPTION,
) -> None:
    """Sample the first samplers.count test images of each of samplers.models with DDIM at each
    of samplers.ddim_steps, and those of samplers.ddpm_models with DDPM too (every step of the
    training schedule), with the same seeds, and write OUT: per model and setting, seconds per image, PSNR (in the hole for
    inpainting), SSIM and SWD. PSNR and SSIM reward a blurry average; SWD does not - read them
    together to choose evaluate.sampler and evaluate.steps.

    Reads params: samplers.*, evaluate.eta, evaluate.batch_size, evaluate.seed.
    Reads models/MODEL/ and data/prepared/<domain>/test.npy.
    """
    params = load_params(params_file)
    cfg, evaluate = params.samplers, params.evaluate
    specs = [model_spec(name, "samplers.models") for name in cfg.models]
    device = default_device()
    results = {}
    for spec in specs:
        name = spec.name
        model = load_model(spec.directory(), device)
        data = load_domain(spec.data_directory())
        settings = [("ddim", steps) for steps in cfg.ddim_steps]
        settings += [("ddpm", model.schedule.steps)] if name in cfg.ddpm_models else []
        rows = []
        for sampler, steps in settings:
            setting = dataclasses.replace(evaluate, sampler=sampler, steps=SamplingSteps(steps, steps),
                                          count=cfg.count, inception_weights=None)
            scores = evaluate_model(model, data, setting, None, "not computed in the sampler comparison",
                                    progress=not quiet, desc=f"samplers {name} {sampler}-{steps}").metrics
            rows.append({"sampler": sampler, "steps": steps, "images": scores["images"],
                         "seconds_per_image": scores["sampling_seconds_per_image"],
                         "psnr": scores[psnr_key(spec.task)], "ssim": scores["ssim"], "swd": scores["swd"]})
            say(f"samplers: {name} {sampler}-{steps}: {rows[-1]['seconds_per_image']} s/image, "
                f"PSNR {rows[-1]['psnr']}, SSIM {rows[-1]['ssim']}, SWD {rows[-1]['swd']}")
        results[name] = rows
    write_json(out, results)
    say(f"samplers: wrote {out}")


if __name__ == "__main__":
    app()
