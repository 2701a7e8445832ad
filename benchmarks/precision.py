"""Does bf16 training reach fp32's validation loss, and how fast is it here? A short run of the base.

    .venv/bin/python -m benchmarks.precision                      # params.yaml, 3 epochs
    .venv/bin/python -m benchmarks.precision --epochs 6 --params configs/my.yaml

What runs: the base model's training job (face inpainting from scratch, params `train`, data
data/prepared/faces from `dvc repro prepare`) through the pipeline's own Trainer, for --epochs
epochs, three times in a temporary directory: fp32 with seed 0 and seed 1, then bf16 with seed 0.
The two fp32 seeds give the noise band (what another seed alone changes); bf16 is "the same
validation loss within noise" when its distance to fp32 (same seed) is within that band.
Images/s counts training steps only (validation and checkpoints excluded).
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

from diffmodel.chain import MODELS
from diffmodel.checkpoints.store import read_meta
from diffmodel.config import load_params
from diffmodel.devices import default_device
from diffmodel.training import precision
from diffmodel.training.job import Limits, TrainJob
from diffmodel.training.loop import Trainer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.precision", description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file (default: params.yaml)")
    parser.add_argument("--data", type=Path, default=Path("data/prepared/faces"), help="prepared faces (default: data/prepared/faces)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (default: 3)")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error("--epochs must be at least 1")
    if not (args.data / "manifest.json").exists():
        parser.error(f"{args.data}: no prepared data; run `dvc repro prepare` first")
    return args


def train_once(args: argparse.Namespace, setting: str, seed: int, out: Path) -> dict:
    params = load_params(args.params)
    spec = MODELS["base"]
    schedule = dataclasses.replace(spec.schedule(params), epochs=args.epochs, seed=seed, precision=setting,
                                   session_epochs=args.epochs, checkpoint_every_epochs=args.epochs)
    job = TrainJob(f"{setting}-seed{seed}", spec.task, spec.domain, args.data, out, params.model, params.diffusion, schedule)
    trainer = Trainer(job, Limits(quiet=True), log=lambda message: None)
    trainer.run()
    meta = read_meta(out)
    history = meta.history
    return {"precision": trainer.precision, "device": trainer.device.type, "seed": seed, "val": [row.val_loss for row in history],
            "images_per_second": sum(row.images for row in history) / sum(row.seconds for row in history)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    channels = load_params(args.params).model.channels
    device = default_device()  # the Trainer's choice
    print(f"training on {device.type}; native bf16 on this CPU: {precision.cpu_has_native_bf16()}; U-Net width "
          f"{channels}; auto trains it in {precision.resolve('auto', device, channels)}")
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for setting, seed in (("fp32", 0), ("fp32", 1), ("bf16", 0)):
            run = train_once(args, setting, seed, Path(tmp) / f"{setting}{seed}")
            runs.append(run)
            print(f"{run['precision']} on {run['device']}, seed {seed}: val loss by epoch {', '.join(f'{v:.4f}' for v in run['val'])}; "
                  f"{run['images_per_second']:.1f} img/s")
    fp32, other_seed, bf16 = (run["val"][-1] for run in runs)
    band, gap = abs(other_seed - fp32), abs(bf16 - fp32)
    print(f"final validation loss: fp32 {fp32:.4f}, bf16 {bf16:.4f} (|difference| {gap:.4f}); "
          f"another fp32 seed: {other_seed:.4f} (|difference| {band:.4f})")
    fp32_speed = (runs[0]["images_per_second"] + runs[1]["images_per_second"]) / 2  # the first run also warms up
    print(f"bf16 {'is within' if gap <= band else 'is outside'} the noise of one other seed after {args.epochs} epochs; "
          f"speed bf16/fp32: {runs[2]['images_per_second'] / fp32_speed:.2f}x (fp32: mean of its two runs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
