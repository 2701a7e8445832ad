"""Training throughput of the default model here, against the old default and the machine's own peak.

    .venv/bin/python -m benchmarks.throughput                    # params.yaml's model and training recipe
    .venv/bin/python -m benchmarks.throughput --params configs/paper.yaml --image-size 64 --batch-size 8
    .venv/bin/python -m benchmarks.throughput --methods finediffusion lora  # PEFT steps beside the full one
    .venv/bin/python -m benchmarks.throughput --sampling         # DDIM and DDPM seconds per image too

What is measured, in one run:

* the machine: fp32 (and, where the hardware has it, bf16) matrix-multiply throughput,
  2048 x 2048 x 2048, the best of a few tries: the peak the U-Net's arithmetic can approach;
* the U-Net's arithmetic: FLOPs of one image's forward and backward pass (torch's FlopCounterMode,
  counted, not estimated; convolutions, matrix multiplies and attention);
* training steps exactly as the Trainer makes them (training/setup.py builds the networks and
  Adam, training/step.py is the step: degrade, loss, backward, warm-up, clipping, Adam, EMA), in
  the Trainer's channels-last layout and precision, for the default recipe (the params file) and
  for the old default (OLD_DEFAULT: dropout 0.1, Adam one tensor at a time, as until 2026-12-01),
  and with --methods each named method's step. The variants take turns, `--rounds` rounds of `--iters`
  timed steps each, so a machine whose speed drifts slows them alike; each one's median step gives
  images/s, its achieved GFLOP/s and share of the fp32 peak, and its speed against the old default;
* with --sampling: the evaluate stage's sampling path (inference.restore, channels-last) with DDIM
  and with DDPM over every step of the schedule, seconds per image.

"cpu/wall" is the CPU seconds this process used per wall-clock second: near the thread count on an
otherwise idle machine; clearly less means other processes took the cores and the times are
pessimistic (then compare with OMP_WAIT_POLICY=PASSIVE or --threads 1).
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

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

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
from diffmodel.training.setup import build_networks, for_training
from diffmodel.training.step import StepTensors, train_step

DOMAIN_OF_TASK = {"inpainting": "faces", "colorization": "landscapes"}
# the training recipe's defaults until 2026-12-01 (issue 22), where they differ from today's
OLD_DEFAULT = {"dropout": 0.1, "fused_adam": False}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.throughput", description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="model, diffusion and `train` recipe (default: params.yaml)")
    parser.add_argument("--batch-size", type=int, default=None, help="training batch (default: train.batch_size)")
    parser.add_argument("--image-size", type=int, default=None, help="image side in pixels (default: data.image_size)")
    parser.add_argument("--iters", type=int, default=15, help="timed steps per variant and round (default: 15)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds the variants take turns in (default: 3)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per variant first (default: 3)")
    parser.add_argument("--task", choices=sorted(DOMAIN_OF_TASK), default="inpainting", help="degradation (default: inpainting)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda when there is one)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--methods", nargs="+", choices=peft.METHODS[1:], default=[],
                        help="also time the step of these parameter-efficient methods beside the full one")
    parser.add_argument("--precision", choices=PRECISIONS, default=None, help="training precision (default: train.precision)")
    parser.add_argument("--no-channels-last", dest="channels_last", action="store_false",
                        help="train in contiguous NCHW instead of the Trainer's channels_last")
    parser.add_argument("--compile", action="store_true", help="torch.compile the default's network (compile time reported)")
    parser.add_argument("--no-old", dest="old", action="store_false", help="do not time the old default")
    parser.add_argument("--sampling", action="store_true", help="also time DDIM and DDPM sampling")
    parser.add_argument("--sample-batch", type=int, default=16, help="images per DDIM batch (default: 16)")
    parser.add_argument("--ddim-steps", type=int, default=50, help="DDIM steps (default: 50)")
    parser.add_argument("--ddpm-batch", type=int, default=2, help="images per DDPM batch; 0 skips DDPM (default: 2)")
    parser.add_argument("--json", action="store_true", help="also print one JSON line with every number")
    args = parser.parse_args(argv)
    for name in ("iters", "rounds", "sample_batch", "ddim_steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def resolve_params(args: argparse.Namespace) -> Params:
    params = load_params(args.params)
    data = params.data if args.image_size is None else dataclasses.replace(params.data, image_size=args.image_size)
    train = params.train if args.batch_size is None else dataclasses.replace(params.train, batch_size=args.batch_size)
    params = dataclasses.replace(params, data=data, train=train)
    params.validate()
    return params


def images(task: str, count: int, size: int, seed: int) -> np.ndarray:
    if DOMAIN_OF_TASK[task] == "faces":
        return render_faces(count, size, seed)
    return render_landscapes(count, size, seed)[0]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def gemm_gflops(dtype: torch.dtype, device: torch.device, n: int = 2048, tries: int = 3, reps: int = 5) -> float:
    """The best of `tries` timings of `reps` n x n x n matrix multiplies, in GFLOP/s."""
    a, b = torch.randn(n, n, dtype=dtype, device=device), torch.randn(n, n, dtype=dtype, device=device)
    a @ b
    best = 0.0
    for _ in range(tries):
        synchronize(device)
        clock = time.perf_counter()
        for _ in range(reps):
            a @ b
        synchronize(device)
        best = max(best, 2 * n**3 * reps / (time.perf_counter() - clock) / 1e9)
    return best


def flops_per_image(params: Params, device: torch.device) -> float:
    """FLOPs of one image's forward and backward pass through the U-Net, counted by torch."""
    network = UNet(params.model, params.data.image_size).to(device)
    size = params.data.image_size
    with FlopCounterMode(display=False) as counter:
        network(torch.randn(4, 6, size, size, device=device), torch.rand(4, device=device)).sum().backward()
    return counter.get_total_flops() / 4


def training_step(params: Params, args: argparse.Namespace, device: torch.device, method: str = "full",
                  dropout: float | None = None, fused_adam: bool = True, compile_network: bool = False):
    """A function that makes one Trainer step (its argument: the step number), and the parameter count."""
    cfg = dataclasses.replace(params.train, method=method, dropout=params.train.dropout if dropout is None else dropout)
    size = params.data.image_size
    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed + 1)
    schedule, task = Schedule(params.diffusion), make_task(args.task)
    pool = images(args.task, cfg.batch_size * 4, size, seed=0)
    networks = build_networks(params.model, size, cfg, device, fused_adam=fused_adam)  # the Trainer's build
    parameters = count_parameters(networks.model)
    networks = for_training(networks, Ranks(), device, channels_last=args.channels_last)
    network = torch.compile(networks.model) if compile_network else networks.model
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    in_use = precision.resolve(args.precision or cfg.precision, device, params.model.channels)
    tensors = StepTensors.of(networks.model, networks.ema)  # as the Trainer lists them, once

    def step(i: int) -> None:
        micro_batches = (to_tensor(pool[start : start + cfg.batch_size]).to(device, memory_format=memory_format)
                         for start in (((i * cfg.accumulate + m) % 4) * cfg.batch_size for m in range(cfg.accumulate)))
        loss = train_step(network, networks.ema, networks.optimizer, micro_batches, task, schedule, cfg, i, generator, in_use,
                          tensors)
        if not torch.isfinite(loss):
            raise RuntimeError("training loss is not finite; the timings would be meaningless")

    return step, parameters


def time_in_turns(steps: dict, args: argparse.Namespace, device: torch.device) -> dict[str, dict]:
    """Median seconds per step of each variant, the variants taking turns round by round."""
    walls = {name: [] for name in steps}
    cpu = {name: 0.0 for name in steps}
    done = dict.fromkeys(steps, 0)
    for name, step in steps.items():
        for _ in range(args.warmup):
            step(done[name])
            done[name] += 1
    for _ in range(args.rounds):
        for name, step in steps.items():
            cpu_clock = time.process_time()
            for _ in range(args.iters):
                synchronize(device)
                clock = time.perf_counter()
                step(done[name])
                synchronize(device)
                walls[name].append(time.perf_counter() - clock)
                done[name] += 1
            cpu[name] += time.process_time() - cpu_clock
    return {name: {"median_step_seconds": statistics.median(walls[name]), "cpu_per_wall": cpu[name] / sum(walls[name])}
            for name in steps}


def sampling_seconds(params: Params, args: argparse.Namespace, device: torch.device, sampler: str, batch: int) -> float:
    """Seconds per image of the evaluate stage's restore() (median of 3 runs; DDPM: 1)."""
    size = params.data.image_size
    network = UNet(params.model, size).to(device, memory_format=torch.channels_last).eval()
    model = LoadedModel(network, Schedule(params.diffusion), make_task(args.task), size, meta=None)
    clean = to_tensor(images(args.task, batch, size, seed=1))
    restore(model, clean, seed=0, sampler="ddim", steps=2)  # warm-up: first-call kernel selection
    runs = []
    for repeat in range(1 if sampler == "ddpm" else 3):
        clock = time.perf_counter()
        restore(model, clean, seed=repeat, sampler=sampler, steps=args.ddim_steps)
        synchronize(device)
        runs.append(time.perf_counter() - clock)
    return statistics.median(runs) / batch


def measure(params: Params, args: argparse.Namespace, device: torch.device) -> dict:
    peaks = {"fp32": gemm_gflops(torch.float32, device)}
    native_bf16 = precision.gpu_has_native_bf16(device) if device.type == "cuda" else precision.cpu_has_native_bf16()
    if native_bf16:
        peaks["bf16"] = gemm_gflops(torch.bfloat16, device)
    flops = flops_per_image(params, device)
    compile_seconds = None
    clock = time.perf_counter()
    default_step, parameters = training_step(params, args, device, compile_network=args.compile)
    if args.compile:
        default_step(0)  # compiles the forward and backward
        compile_seconds = time.perf_counter() - clock
    steps = {"default": default_step}
    if args.old:
        steps["old default"] = training_step(params, args, device, **OLD_DEFAULT)[0]
    for method in args.methods:
        steps[f"default, {method}"] = training_step(params, args, device, method=method)[0]
    timed = time_in_turns(steps, args, device)
    per_step = params.train.batch_size * params.train.accumulate
    for row in timed.values():
        row["images_per_second"] = per_step / row["median_step_seconds"]
        row["gflops"] = row["images_per_second"] * flops / 1e9
        row["share_of_fp32_peak"] = row["gflops"] / peaks["fp32"]
    if "old default" in timed:
        for row in timed.values():
            row["x_old_default"] = row["images_per_second"] / timed["old default"]["images_per_second"]
    result = {"peaks_gflops": peaks, "flops_per_image": flops, "parameters": parameters, "images_per_step": per_step,
              "training": timed, "compile_seconds": compile_seconds}
    if args.sampling:
        result["sampling_seconds_per_image"] = {f"ddim-{args.ddim_steps}": sampling_seconds(params, args, device, "ddim", args.sample_batch)}
        if args.ddpm_batch:
            result["sampling_seconds_per_image"]["ddpm"] = sampling_seconds(params, args, device, "ddpm", args.ddpm_batch)
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def report(result: dict, params: Params, args: argparse.Namespace, device: torch.device) -> None:
    cfg, model = params.train, params.model
    gpu = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
    print("diffmodel throughput benchmark")
    print(f"  torch {torch.__version__} (python {platform.python_version()}) on {device}{gpu}, {os.cpu_count()} cores, "
          f"{torch.get_num_threads()} threads; OpenMP/MKL environment: "
          + (", ".join(f"{k}={os.environ[k]}" for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS") if k in os.environ)
             or "none set"))
    print(f"  U-Net: {result['parameters']:,} parameters (width {model.channels}, mults {list(model.channel_mults)}), "
          f"{params.data.image_size}x{params.data.image_size} images, {args.task}; "
          f"{result['flops_per_image'] / 1e6:.0f} MFLOP per image forward and backward")
    print(f"  default recipe ({args.params}): batch {cfg.batch_size} x {cfg.accumulate}, dropout {cfg.dropout}, fused Adam; "
          f"old default: {', '.join(f'{k} {v}' for k, v in OLD_DEFAULT.items())}; "
          f"{'channels_last' if args.channels_last else 'contiguous'}, {args.rounds} rounds x {args.iters} timed steps each")
    peaks = ", ".join(f"{name} {value:.0f} GFLOP/s" for name, value in result["peaks_gflops"].items())
    print(f"  this machine's matrix-multiply peak (2048^3, best of 3): {peaks}")
    if result["compile_seconds"] is not None:
        print(f"  torch.compile: the first step, compiling, took {result['compile_seconds']:.1f} s")
    print()
    rows = [("training step", "img/s", "GFLOP/s", "of fp32 peak", "x old default", "cpu/wall")]
    for name, row in result["training"].items():
        rows.append((name, f"{row['images_per_second']:.1f}", f"{row['gflops']:.1f}", f"{100 * row['share_of_fp32_peak']:.0f} %",
                     f"{row['x_old_default']:.2f}" if "x_old_default" in row else "-", f"{row['cpu_per_wall']:.2f}"))
    for name, seconds in result.get("sampling_seconds_per_image", {}).items():
        rows.append((f"sampling, {name}", f"{1 / seconds:.1f}", "-", "-", "-", "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for k, row in enumerate(rows):
        print("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        if k == 0:
            print("  " + "  ".join("-" * w for w in widths))
    print(f"\n  peak resident memory: {result['peak_rss_mb']:.0f} MB")
    low = [name for name, row in result["training"].items() if device.type == "cpu" and row["cpu_per_wall"] < 0.75 * torch.get_num_threads()]
    if low:
        print(f"  note: cpu/wall well below {torch.get_num_threads()} threads for {', '.join(low)}: other processes "
              f"were using the cores, so these times are pessimistic")


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
    result = measure(params, args, device)
    report(result, params, args, device)
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
