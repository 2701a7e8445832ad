"""Stage `photos`: the README's pictures of `diffmodel colorize` and `diffmodel inpaint` on photos larger
than the models, made with the chain's models of this run (the same code the commands run)."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import numpy as np
import typer
from PIL import Image, ImageDraw

from diffmodel.chain import model_spec
from diffmodel.cli import photos
from diffmodel.config import load_params
from diffmodel.data.synthetic import LANDSCAPE_CLASSES, render_faces, render_landscapes
from diffmodel.devices import default_device
from diffmodel.errors import one_line_errors
from diffmodel.model.diffusion import Guidance
from diffmodel.model.inference import load_model
from diffmodel.reporting import figures
from stages.common import PARAMS_OPTION, QUIET_OPTION, say

BOX = (80, 120, 96, 64)  # X, Y, W, H of the hole in the 256-px face
app = typer.Typer(add_completion=False)


def grayscale_jpeg(rgb: np.ndarray) -> np.ndarray:
    """What a user would hand over: the photo in gray, saved as a JPEG (quality 90) and read back."""
    buffer = BytesIO()
    Image.fromarray(rgb).convert("L").save(buffer, format="JPEG", quality=90)
    buffer.seek(0)
    return photos.read_photo(buffer)


def a_forest(size: int = 384) -> np.ndarray:
    """The first built-in forest of seed 7, rendered at `size` px and cropped to size x 2/3 size."""
    images, labels = render_landscapes(8, size, seed=7)
    forests = [k for k, label in enumerate(labels) if "forest" in LANDSCAPE_CLASSES[label]]
    return images[forests[0]][size // 6 : size // 6 + 2 * size // 3]


@app.command()
@one_line_errors
def make(
    params_file: Path = PARAMS_OPTION,
    out: Path = typer.Option(Path("reports/photos"), help="Where colorize.png and inpaint.png go."),
    quiet: bool = QUIET_OPTION,
) -> None:
    """Colorize a 384x256 grayscale JPEG of a built-in forest with models/colorize_landscapes - no class,
    and as summer_forest and autumn_forest under evaluate.guidance - and fill a box in a 256-px built-in
    face with models/base. Writes OUT/colorize.png and OUT/inpaint.png.

    Reads params: evaluate (its guidance, guidance_scale and steps). Reads models/colorize_landscapes/, models/base/.
    """
    cfg = load_params(params_file).evaluate
    device = default_device()
    colorizer = load_model(model_spec("colorize_landscapes").directory(), device)
    gray = grayscale_jpeg(a_forest())
    height, width = gray.shape[:2]
    guidance = Guidance(cfg.guidance, cfg.guidance_scale)
    flags = f"--guidance {cfg.guidance} --guidance-scale {cfg.guidance_scale:g}" if cfg.guidance != "none" else ""
    panels = {f"input {width}x{height} grayscale JPEG": gray,
              "diffmodel colorize models/colorize_landscapes (no class)": photos.colorize(colorizer, [gray], 0, steps=cfg.steps.colorization)[0]}
    for name in ("summer_forest", "autumn_forest"):
        coloured = photos.colorize(colorizer, [gray], 0, steps=cfg.steps.colorization, fine=colorizer.classes.index(name), guidance=guidance)
        panels[f"--class {name} {flags}".strip()] = coloured[0]
    figures.photo_panel(panels, out / "colorize.png")

    inpainter = load_model(model_spec("base").directory(), device)
    face = render_faces(4, 256, seed=3)[1]
    filled = photos.inpaint(inpainter, face, photos.box_hole(face.shape[:2], BOX), 0, steps=cfg.steps.inpainting)
    shown = Image.fromarray(face)
    x, y, w, h = BOX
    ImageDraw.Draw(shown).rectangle([x, y, x + w - 1, y + h - 1], outline=(220, 30, 30), width=2)
    figures.photo_panel({f"input 256x256, --box {','.join(map(str, BOX))}": np.asarray(shown),
                         "diffmodel inpaint models/base": filled}, out / "inpaint.png")
    say(f"photos: wrote {out / 'colorize.png'} and {out / 'inpaint.png'}")


if __name__ == "__main__":
    app()
