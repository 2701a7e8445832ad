"""Seconds per megapixel of `diffmodel colorize` and `diffmodel inpaint` on photos of several sizes.

    .venv/bin/python -m benchmarks.photos            # after `make repro`: the trained models
    .venv/bin/python -m benchmarks.photos --device cuda --sizes 1024x768,4000x3000

What is timed: photos.colorize and photos.inpaint on one photo (a built-in landscape brought
to each size), DDIM with --steps steps, after one untimed warm-up call; reading and writing
files is not included. Colorization samples at the model's resolution whatever the photo's
size, so its time per photo is nearly constant and its time per megapixel falls with the size;
inpainting's hole is a quarter of each side, so its context window is the whole photo.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from diffmodel.cli import photos
from diffmodel.data import synthetic
from diffmodel.model.inference import load_model


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.photos", description=__doc__.splitlines()[0])
    parser.add_argument("--colorize-model", type=Path, default=Path("models/colorize_landscapes"))
    parser.add_argument("--inpaint-model", type=Path, default=Path("models/base"))
    parser.add_argument("--sizes", default="640x480,1280x960,2048x1536", help="WxH,WxH,...")
    parser.add_argument("--steps", type=int, default=50, help="DDIM steps (default: 50)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per size (default: 3)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    return parser.parse_args(argv)


def timed(call, repeats: int) -> float:
    call()  # warm-up
    seconds = []
    for _ in range(repeats):
        clock = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - clock)
    return statistics.median(seconds)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    colorizer = load_model(args.colorize_model, args.device)
    inpainter = load_model(args.inpaint_model, args.device)
    scene = synthetic.render_landscapes(1, 128, seed=0)[0][0]
    print(f"diffmodel photo benchmark on {args.device} ({torch.get_num_threads()} threads), DDIM-{args.steps}, "
          f"median of {args.repeats}")
    print(f"  {'photo':>10}  {'megapixels':>10}  {'colorize s':>10}  {'s/MP':>6}  {'inpaint s':>9}  {'s/MP':>6}")
    for size in args.sizes.split(","):
        width, height = (int(v) for v in size.lower().split("x"))
        photo = np.asarray(Image.fromarray(scene).resize((width, height), Image.Resampling.BICUBIC))
        hole = photos.box_hole((height, width), (width * 3 // 8, height * 3 // 8, width // 4, height // 4))
        megapixels = width * height / 1e6
        colour = timed(lambda: photos.colorize(colorizer, [photo], 0, "ddim", args.steps), args.repeats)
        fill = timed(lambda: photos.inpaint(inpainter, photo, hole, 0, "ddim", args.steps), args.repeats)
        print(f"  {size:>10}  {megapixels:>10.2f}  {colour:>10.3f}  {colour / megapixels:>6.3f}  {fill:>9.3f}  "
              f"{fill / megapixels:>6.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
