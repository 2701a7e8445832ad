"""Draw time-to-quality curves from runs of benchmarks.time_to_quality (its --json files).

    .venv/bin/python -m benchmarks.curves out.png psnr "today=a.json" "no dropout=b.json"
    .venv/bin/python -m benchmarks.curves out.png swd a.json b.json --title "face colorization"

One line per run: the metric (psnr, swd, ssim or val_loss) against training seconds, labelled by
the name before '=' (else the file's name).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from diffmodel.reporting.figures import line_chart

LABELS = {"psnr": "PSNR (dB; in the hole for inpainting)", "swd": "SWD x 1000 (lower is better)", "ssim": "SSIM",
          "val_loss": "validation loss (EMA weights)"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.curves", description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the PNG to write")
    parser.add_argument("metric", choices=sorted(LABELS), help="what to draw against training seconds")
    parser.add_argument("runs", nargs="+", help="NAME=FILE.json (or FILE.json) from benchmarks.time_to_quality --json")
    parser.add_argument("--title", default=None, help="the chart's title (default: the model of the first run)")
    args = parser.parse_args(argv)
    series, title = {}, args.title
    for run in args.runs:
        name, _, path = run.rpartition("=")
        result = json.loads(Path(path).read_text())
        title = title or f"{result['model']}: {args.metric} against training time"
        series[name or Path(path).stem] = [(row["train_seconds"], row[args.metric]) for row in result["rows"]]
    line_chart(series, args.out, title, "training seconds", LABELS[args.metric])
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
