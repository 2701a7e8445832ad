"""Quality against training seconds: train one of the pipeline's models under a recipe and score it as it goes.

    .venv/bin/python -m benchmarks.time_to_quality base --seconds 150
    .venv/bin/python -m benchmarks.time_to_quality colorize_faces --parent models/base --set adapt.lr=0.002
    .venv/bin/python -m benchmarks.time_to_quality scratch_colorization --set adapt.batch_size=32 --every 2 --json out.json

What runs: the model's training job exactly as its pipeline stage builds it (task, domain, init,
schedule from params.yaml and chain.py, with `--set section.key=value` overrides in the syntax of
`dvc exp run -S`), through the pipeline's own Trainer, in a temporary directory, one epoch more at
a time ("more epochs continue a finished model", bitwise the same as one longer run). Every
`--every` epochs the EMA weights are scored as the evaluate stage scores them (the first
`--count` test images, evaluate.* settings): PSNR (in the hole for inpainting) and SWD. Training
stops at the first epoch ending past `--seconds` of training (validation, scoring and start-up
excluded, as in the reports' training times). Needs data/prepared/ (`dvc repro prepare`) and,
for an adapted model, its parent's directory (`--parent`, default models/<parent>).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

from diffmodel.chain import MODELS, model_spec
from diffmodel.checkpoints.store import read_meta
from diffmodel.config import load_params
from diffmodel.data.prepared import load_domain
from diffmodel.devices import default_device
from diffmodel.errors import UserError
from diffmodel.evaluation.evaluate import evaluate_model, psnr_key
from diffmodel.model.inference import load_model
from diffmodel.training.job import Limits, TrainJob
from diffmodel.training.loop import Trainer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.time_to_quality", description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=sorted(MODELS), help="which of the pipeline's models to train")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file (default: params.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a param, as `dvc exp run -S` does (repeatable)")
    parser.add_argument("--parent", type=Path, default=None, help="the parent's checkpoint directory (default: models/<parent>)")
    parser.add_argument("--seconds", type=float, default=120.0, help="training seconds to spend (default: 120)")
    parser.add_argument("--max-epochs", type=int, default=1000, help="stop at this epoch at the latest (default: 1000)")
    parser.add_argument("--every", type=int, default=1, help="score every this many epochs (default: 1)")
    parser.add_argument("--count", type=int, default=64, help="test images scored (default: 64, as evaluate.count)")
    parser.add_argument("--json", type=Path, default=None, help="also write every row to this JSON file")
    parser.add_argument("--keep", type=Path, default=None, help="keep the trained model in this directory (must not exist)")
    args = parser.parse_args(argv)
    if args.every < 1 or args.count < 2 or args.seconds <= 0:
        parser.error("--every must be at least 1, --count at least 2 and --seconds positive")
    if args.keep is not None and args.keep.exists():
        parser.error(f"--keep {args.keep}: exists already; choose a new directory")
    return args


def with_overrides(params_file: Path, overrides: list[str], into: Path) -> Path:
    """A copy of the params file with `section.key=value` overrides (values parsed as YAML), checked."""
    raw = yaml.safe_load(params_file.read_text()) or {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            raise UserError(f"--set {item}: expected SECTION.KEY=VALUE")
        *sections, name = key.split(".")
        node = raw
        for section in sections:
            node = node.setdefault(section, {})
        node[name] = yaml.safe_load(value)
    path = into / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    load_params(path)  # a wrong override is a one-line error here, before any work
    return path


def run(args: argparse.Namespace) -> list[dict]:
    spec = model_spec(args.model)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        params = load_params(with_overrides(args.params, args.overrides, Path(tmp)))
        parent = args.parent or (MODELS[spec.parent].directory() if spec.parent else None)
        evaluate = dataclasses.replace(params.evaluate, count=args.count, inception_weights=None)
        data = load_domain(spec.data_directory())
        out = Path(tmp) / spec.name
        for epoch in range(1, args.max_epochs + 1):
            schedule = dataclasses.replace(spec.schedule(params), epochs=epoch)
            job = TrainJob(spec.name, spec.task, spec.domain, spec.data_directory(), out, params.model, params.diffusion,
                           schedule, init=parent)
            Trainer(job, Limits(quiet=True), log=lambda message: None).run()
            meta = read_meta(out)
            seconds = meta.timings()["total_seconds"]
            if epoch % args.every == 0 or seconds >= args.seconds:
                clock = time.perf_counter()
                scores = evaluate_model(load_model(out, default_device()), data, evaluate, None, "not computed here",
                                        progress=False).metrics
                rows.append({"epoch": epoch, "train_seconds": seconds, "val_loss": meta.history[-1].val_loss,
                             "psnr": scores[psnr_key(spec.task)], "ssim": scores["ssim"], "swd": scores["swd"],
                             "scoring_seconds": round(time.perf_counter() - clock, 1)})
                print(f"{spec.name} epoch {epoch:3d}  {seconds:7.1f} s  val {rows[-1]['val_loss']:.5f}  "
                      f"PSNR {rows[-1]['psnr']:6.2f}  SWD {rows[-1]['swd']:6.1f}", flush=True)
            if seconds >= args.seconds:
                break
        if args.keep is not None:
            shutil.copytree(out, args.keep)
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        rows = run(args)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.json:
        args.json.write_text(json.dumps({"model": args.model, "overrides": args.overrides, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
