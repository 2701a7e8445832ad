"""Measure training throughput, sampling latency and peak memory of the default model here.

    .venv/bin/python -m benchmarks.throughput                  # defaults of diffmodel.config.Params()
    .venv/bin/python -m benchmarks.throughput --params params.yaml --json
    .venv/bin/python -m benchmarks.throughput --batch-size 64 --device cuda
    .venv/bin/python -m benchmarks.throughput --train-only --compile   # is torch.compile worth it here?
    .venv/bin/python -m benchmarks.throughput --train-only --method peft   # PEFT's step beside the full one

What is timed, and how:

* training step: exactly what diffmodel.train.Trainer does per optimizer step - render a
  batch to tensors, degrade it with the task, noisy input and loss, backward, LR warmup,
  gradient clipping, Adam step, zero_grad, EMA update - with the Trainer's channels_last
  model and its precision (`--precision`, default train.precision; auto follows the Trainer's
  rule in diffmodel/precision.py: bf16 on a GPU with native bf16, or on a CPU with bf16
  instructions and a U-Net 64+ wide). `--warmup` steps are run first and not timed;
  the median of `--iters` timed steps gives images/second. `--method peft` times a PEFT
  step too (diffmodel/peft.py: biases, norms and embedders train, no gradient for the rest).
* sampling: the inference path the evaluate stage uses (diffmodel.inference.restore on the
  EMA network in eval mode): DDIM with `--ddim-steps` steps, and DDPM over every step of
  the schedule. DDPM is 20x the work of DDIM-50, so it runs once on a small batch; DDIM
  is also timed on that batch so the two per-image figures can be compared directly.
* peak memory: resident set size (ru_maxrss) of this process after each phase, and on a
  GPU torch.cuda.max_memory_allocated per phase.

Per phase, "cpu/wall" is the CPU seconds this process used per wall-clock second. On an
otherwise idle machine it is close to the thread count; clearly less means other
processes competed for the cores and the times are pessimistic. On a busy machine
torch's OpenMP threads spin-wait for each other and can run many times slower than one
thread would; `OMP_WAIT_POLICY=PASSIVE` in the environment (it must be set before torch
is loaded) or `--threads 1` avoids that, and the settings in effect are printed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from diffmodel.config import Params, load_params
from diffmodel.data.synthetic import render_faces, render_landscapes
from diffmodel.data.tensors import to_tensor
from diffmodel.devices import device_from
from diffmodel.errors import UserError
from diffmodel.model import peft
from diffmodel.model.diffusion import Schedule
from diffmodel.model.inference import LoadedModel, restore
from diffmodel.model.tasks import make_task
from diffmodel.model.unet import UNet, count_parameters
from diffmodel.training import precision
from diffmodel.training.distributed import Ranks
from diffmodel.training.precision import PRECISIONS
from diffmodel.training.session import peak_rss_mb
from diffmodel.training.setup import build_model, build_networks, for_training
from diffmodel.training.step import train_step

DOMAIN_OF_TASK = {"inpainting": "faces", "colorization": "landscapes"}


@dataclass
class Phase:
    """Wall and CPU time of one timed region, and the memory peak reached by its end."""

    wall: list[float] = field(default_factory=list)
    cpu: float = 0.0
    peak_rss_mb: float = 0.0
    peak_gpu_mb: float | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.wall)

    @property
    def cpu_per_wall(self) -> float:
        return self.cpu / sum(self.wall) if self.wall else 0.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.throughput",
        description="Training images/s, DDIM and DDPM seconds per image, and peak memory of the diffmodel U-Net.",
    )
    parser.add_argument("--params", default=None, help="read model/diffusion/data/train settings from this params.yaml (default: built-in defaults)")
    parser.add_argument("--batch-size", type=int, default=None, help="training batch (default: train.batch_size)")
    parser.add_argument("--image-size", type=int, default=None, help="image side in pixels (default: data.image_size)")
    parser.add_argument("--iters", type=int, default=20, help="timed training steps (default: 20)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed training steps before timing (default: 2)")
    parser.add_argument("--task", choices=sorted(DOMAIN_OF_TASK), default="inpainting", help="degradation (default: inpainting, the base stage)")
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1, ...")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--sample-batch", type=int, default=16, help="images per DDIM batch (default: 16)")
    parser.add_argument("--ddim-steps", type=int, default=50, help="DDIM steps (default: 50)")
    parser.add_argument("--ddim-repeats", type=int, default=3, help="timed DDIM runs per batch size (default: 3)")
    parser.add_argument("--ddpm-batch", type=int, default=2, help="images per DDPM batch; 0 skips DDPM (default: 2)")
    parser.add_argument("--ddpm-repeats", type=int, default=1, help="timed DDPM runs (default: 1)")
    parser.add_argument("--no-channels-last", dest="channels_last", action="store_false",
                        help="train in contiguous NCHW instead of the Trainer's channels_last")
    parser.add_argument("--sample-contiguous", dest="sample_channels_last", action="store_false",
                        help="sample with a contiguous NCHW network instead of the channels_last one inference uses")
    parser.add_argument("--method", choices=peft.METHODS, default="full",
                        help="full: time the full fine-tuning step; peft: time the PEFT step beside it (default: full)")
    parser.add_argument("--precision", choices=PRECISIONS, default=None,
                        help="training precision; auto: the Trainer's rule (default: train.precision)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the training model (compile time is reported)")
    parser.add_argument("--train-only", action="store_true", help="time the training step only (no sampling)")
    parser.add_argument("--json", action="store_true", help="also print one JSON line with every number")
    args = parser.parse_args(argv)
    for name in ("iters", "sample_batch", "ddim_steps", "ddim_repeats", "ddpm_repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    for name in ("warmup", "ddpm_batch"):
        if getattr(args, name) < 0:
            parser.error(f"--{name.replace('_', '-')} must not be negative")
    if args.compile:
        args.warmup = max(args.warmup, 1)  # the compiling first step must not be timed
    return args


def resolve_params(args: argparse.Namespace) -> Params:
    params = load_params(args.params) if args.params else Params()
    data = params.data if args.image_size is None else dataclasses.replace(params.data, image_size=args.image_size)
    train = params.train if args.batch_size is None else dataclasses.replace(params.train, batch_size=args.batch_size)
    params = dataclasses.replace(params, data=data, train=train)
    params.validate()
    return params


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def start_phase(device: torch.device) -> None:
    synchronize(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def end_phase(phase: Phase, device: torch.device) -> Phase:
    phase.peak_rss_mb = peak_rss_mb()
    if device.type == "cuda":
        phase.peak_gpu_mb = torch.cuda.max_memory_allocated(device) / 2**20
    return phase


def images(task: str, count: int, size: int, seed: int) -> np.ndarray:
    if DOMAIN_OF_TASK[task] == "faces":
        return render_faces(count, size, seed)
    return render_landscapes(count, size, seed)[0]


def resolved_precision(params: Params, args: argparse.Namespace, device: torch.device) -> str:
    return precision.resolve(args.precision or params.train.precision, device, params.model.channels)


def time_training(params: Params, args: argparse.Namespace, device: torch.device,
                  method: str = "full") -> tuple[Phase, float | None, int]:
    """Warm up, then time `args.iters` Trainer steps. Returns the phase, compile seconds and parameter count."""
    cfg, size = params.train, params.data.image_size
    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed + 1)
    schedule, task = Schedule(params.diffusion), make_task(args.task)
    pool = images(args.task, cfg.batch_size * 4, size, seed=0)

    networks = build_networks(params.model, size, dataclasses.replace(cfg, method=method), device)  # the Trainer's build
    parameters = count_parameters(networks.model)
    networks = for_training(networks, Ranks(), device, channels_last=args.channels_last)
    model, ema, optimizer = networks.model, networks.ema, networks.optimizer
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    network = torch.compile(model) if args.compile else model
    loss_sum = torch.zeros((), device=device)
    in_use = resolved_precision(params, args, device)

    def step(i: int) -> None:
        nonlocal loss_sum
        micro_batches = (
            to_tensor(pool[start : start + cfg.batch_size]).to(device, memory_format=memory_format)
            for start in (((i * cfg.accumulate + micro) % 4) * cfg.batch_size for micro in range(cfg.accumulate))
        )
        loss_sum += train_step(network, ema, optimizer, micro_batches, task, schedule, cfg, i, generator, in_use)

    compile_seconds = None
    for i in range(args.warmup):
        clock = time.perf_counter()
        step(i)
        synchronize(device)
        if i == 0 and args.compile:
            compile_seconds = time.perf_counter() - clock  # the first call compiles forward and backward
    phase = Phase()
    start_phase(device)
    cpu_clock = time.process_time()
    for i in range(args.warmup, args.warmup + args.iters):
        clock = time.perf_counter()
        step(i)
        synchronize(device)
        phase.wall.append(time.perf_counter() - clock)
    phase.cpu = time.process_time() - cpu_clock
    if not torch.isfinite(loss_sum):
        raise RuntimeError("training loss is not finite; the timings would be meaningless")
    return end_phase(phase, device), compile_seconds, parameters


def time_sampling(params: Params, args: argparse.Namespace, device: torch.device, sampler: str, batch: int, repeats: int) -> Phase:
    """Time `repeats` calls of the evaluate stage's restore() with the EMA-style eval network."""
    size = params.data.image_size
    network = UNet(params.model, size).to(device).eval()
    if args.sample_channels_last:
        network = network.to(memory_format=torch.channels_last)
    model = LoadedModel(network, Schedule(params.diffusion), make_task(args.task), size, meta=None)
    clean = to_tensor(images(args.task, batch, size, seed=1))
    restore(model, clean, seed=0, sampler="ddim", steps=2)  # warm-up: first-call kernel selection
    phase = Phase()
    start_phase(device)
    cpu_clock = time.process_time()
    for repeat in range(repeats):
        clock = time.perf_counter()
        restore(model, clean, seed=repeat, sampler=sampler, steps=args.ddim_steps)
        synchronize(device)
        phase.wall.append(time.perf_counter() - clock)
    phase.cpu = time.process_time() - cpu_clock
    return end_phase(phase, device)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        params = resolve_params(args)
        device = device_from(args.device)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)

    size, batch = params.data.image_size, params.train.batch_size
    model_cfg = params.model
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    rss_at_start = peak_rss_mb()  # torch itself (a CUDA build loads several hundred MB of libraries)
    wall_clock = time.perf_counter()

    train, compile_seconds, parameters = time_training(params, args, device)
    train_peft = time_training(params, args, device, "peft")[0] if args.method == "peft" else None
    ddim = ddim_small = ddpm = None
    if not args.train_only:
        ddim = time_sampling(params, args, device, "ddim", args.sample_batch, repeats=args.ddim_repeats)
    if args.ddpm_batch and not args.train_only:
        ddim_small = time_sampling(params, args, device, "ddim", args.ddpm_batch, repeats=args.ddim_repeats)
        estimate = ddim_small.median / args.ddim_steps * params.diffusion.steps * args.ddpm_repeats
        print(f"(timing DDPM: {params.diffusion.steps} steps x {args.ddpm_repeats} run(s) on {args.ddpm_batch} images, "
              f"about {estimate:.0f} s)", file=sys.stderr, flush=True)
        ddpm = time_sampling(params, args, device, "ddpm", args.ddpm_batch, repeats=args.ddpm_repeats)
    total = time.perf_counter() - wall_clock

    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    config = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(device) + (f" ({gpu})" if gpu else ""),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "parameters": parameters,
        "model": dataclasses.asdict(model_cfg),
        "diffusion_steps": params.diffusion.steps,
        "prediction": params.diffusion.prediction,
        "image_size": size,
        "batch_size": batch,
        "accumulate": params.train.accumulate,
        "task": args.task,
        "dropout": params.train.dropout,
        "train_memory_format": "channels_last" if args.channels_last else "contiguous",
        "sample_memory_format": "channels_last" if args.sample_channels_last else "contiguous",
        "compile": args.compile,
        "precision": resolved_precision(params, args, device),
        "precision_setting": args.precision or params.train.precision,
        "load_average_before": load_before,
        "env": {name: os.environ.get(name) for name in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS")},
    }

    print("diffmodel throughput benchmark")
    print(f"  torch {config['torch']} (python {config['python']}) on {config['device']}, "
          f"{config['cores']} cores, {config['threads']} threads")
    print(f"  U-Net: {parameters:,} parameters; channels {model_cfg.channels}, mults {list(model_cfg.channel_mults)}, "
          f"{model_cfg.blocks_per_level} block(s)/level, attention at {list(model_cfg.attention_resolutions)}")
    accumulated = f" x {params.train.accumulate} accumulated" if params.train.accumulate > 1 else ""
    print(f"  images {size}x{size}, training batch {batch}{accumulated}, task {args.task}, dropout {params.train.dropout}, "
          f"diffusion schedule {params.diffusion.steps} steps, {params.diffusion.prediction} prediction")
    print(f"  training: {config['train_memory_format']}, compile {'on' if args.compile else 'off'}, precision {config['precision']} "
          f"({config['precision_setting']}); "
          f"{args.warmup} warm-up + {args.iters} timed steps")
    omp = ", ".join(f"{k}={v}" for k, v in config["env"].items() if v is not None) or "none set"
    print(f"  OpenMP/MKL environment: {omp}")
    if load_before is not None:
        print(f"  1-min load average before starting: {load_before:.2f}")
    if compile_seconds is not None:
        print(f"  torch.compile: first step (compilation included) took {compile_seconds:.1f} s")
    print()

    rows = [("measure", "batch", "result", "detail", "cpu/wall", "peak RSS")]

    def add(name: str, batch_size: int, result: str, detail: str, phase: Phase) -> None:
        gpu_peak = f", GPU {phase.peak_gpu_mb:.0f} MB" if phase.peak_gpu_mb is not None else ""
        rows.append((name, str(batch_size), result, detail, f"{phase.cpu_per_wall:.2f}", f"{phase.peak_rss_mb:.0f} MB{gpu_peak}"))

    step = train.median
    per_step = batch * params.train.accumulate
    add("training step", per_step, f"{per_step / step:.1f} img/s",
        f"median {step:.3f} s/step (min {min(train.wall):.3f}, max {max(train.wall):.3f})", train)
    if train_peft is not None:
        share = peft.trainable_share(build_model(model_cfg, size), "peft")
        add("training step, PEFT", per_step, f"{per_step / train_peft.median:.1f} img/s",
            f"median {train_peft.median:.3f} s/step: {step / train_peft.median:.2f}x full's speed; "
            f"{share.percent:.2f} % of the parameters train", train_peft)
    if ddim is not None:
        add(f"DDIM-{args.ddim_steps} sampling", args.sample_batch, f"{ddim.median / args.sample_batch:.3f} s/img",
            f"median {ddim.median:.2f} s/batch of {len(ddim.wall)} run(s)", ddim)
    if ddpm is not None:
        add(f"DDIM-{args.ddim_steps} sampling", args.ddpm_batch, f"{ddim_small.median / args.ddpm_batch:.3f} s/img",
            f"median {ddim_small.median:.2f} s/batch of {len(ddim_small.wall)} run(s)", ddim_small)
        add(f"DDPM-{params.diffusion.steps} sampling", args.ddpm_batch, f"{ddpm.median / args.ddpm_batch:.3f} s/img",
            f"median {ddpm.median:.2f} s/batch of {len(ddpm.wall)} run(s)", ddpm)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for k, row in enumerate(rows):
        print("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        if k == 0:
            print("  " + "  ".join("-" * w for w in widths))
    print()
    phases = [p for p in (train, train_peft, ddim, ddim_small, ddpm) if p is not None]
    final_gpu = f", GPU {max(p.peak_gpu_mb for p in phases):.0f} MB" if device.type == "cuda" else ""
    print(f"  peak memory of the whole run: RSS {peak_rss_mb():.0f} MB{final_gpu} "
          f"({rss_at_start:.0f} MB of it before any work: the Python process with torch imported)")
    print(f"  benchmark wall time: {total:.0f} s")
    low = [name for name, p in (("training", train), ("DDIM", ddim), ("DDPM", ddpm)) if p and device.type == "cpu"
           and p.cpu_per_wall < 0.75 * config["threads"]]
    if low:
        print(f"  note: cpu/wall well below {config['threads']} threads during {', '.join(low)}: "
              "other processes were using the cores, so these times are pessimistic")
        if config["threads"] > 1 and not os.environ.get("OMP_WAIT_POLICY"):
            print("  note: with busy cores, torch's spinning OpenMP threads can run many times slower; "
                  "compare with OMP_WAIT_POLICY=PASSIVE (or --threads 1)")

    if args.json:
        result = {
            "config": config,
            "train": {"images_per_second": per_step / step, "images_per_step": per_step, "median_step_seconds": step, "step_seconds": train.wall,
                      "compile_seconds": compile_seconds, "cpu_per_wall": train.cpu_per_wall,
                      "peak_rss_mb": train.peak_rss_mb, "peak_gpu_mb": train.peak_gpu_mb},
            "train_peft": None if train_peft is None else {
                "images_per_second": per_step / train_peft.median, "median_step_seconds": train_peft.median,
                "speedup": step / train_peft.median, "step_seconds": train_peft.wall},
            "ddim": None if ddim is None else {
                "steps": args.ddim_steps, "batch": args.sample_batch, "seconds_per_image": ddim.median / args.sample_batch,
                "cpu_per_wall": ddim.cpu_per_wall, "peak_rss_mb": ddim.peak_rss_mb, "peak_gpu_mb": ddim.peak_gpu_mb},
            "ddim_small_batch": None if ddim_small is None else {
                "steps": args.ddim_steps, "batch": args.ddpm_batch, "seconds_per_image": ddim_small.median / args.ddpm_batch},
            "ddpm": None if ddpm is None else {
                "steps": params.diffusion.steps, "batch": args.ddpm_batch, "seconds_per_image": ddpm.median / args.ddpm_batch,
                "runs": len(ddpm.wall), "cpu_per_wall": ddpm.cpu_per_wall, "peak_rss_mb": ddpm.peak_rss_mb,
                "peak_gpu_mb": ddpm.peak_gpu_mb},
            "peak_rss_mb": peak_rss_mb(),
            "rss_at_start_mb": rss_at_start,
            "wall_seconds": total,
        }
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
