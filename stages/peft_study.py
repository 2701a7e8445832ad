"""The PEFT study (study/dvc.yaml, `dvc repro study/dvc.yaml`): every fine-tuning method on both
transfers of the chain, at an equal step budget (params adapt's epochs, batch and data), each
with its own learning rate and seed, scored on the same test images as the chain.

    run TRANSFER METHOD LR SEED   trains models/study/KEY from the transfer's parent, scores it,
                                  writes reports/peft_study/runs/KEY.json; --epochs N for an
                                  equal-time run (the epochs full fine-tuning's time buys the method)
    table                         reports/peft_study/table.md and summary.json from every run

The transfers are the chain's: `faces` adapts the inpainting base to face colorization (task
transfer), `landscapes` adapts colorize_faces to landscape colorization (domain transfer).
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from pathlib import Path
from typing import Optional

import typer

from diffmodel.chain import MODELS, MODELS_DIR, PREPARED_DATA
from diffmodel.checkpoints.store import WEIGHTS
from diffmodel.config import load_params
from diffmodel.data.prepared import load_domain
from diffmodel.devices import default_device
from diffmodel.errors import UserError, one_line_errors
from diffmodel.evaluation import metrics
from diffmodel.evaluation.evaluate import evaluate_model
from diffmodel.files import atomic_write, write_json
from diffmodel.model.inference import load_model
from diffmodel.model.peft import METHODS
from diffmodel.training.job import Limits, Outcome, TrainJob
from diffmodel.training.loop import Trainer
from stages.common import EXIT_INTERRUPTED, EXIT_PAUSED, PARAMS_OPTION, QUIET_OPTION, say

TRANSFERS = {"faces": "colorize_faces", "landscapes": "colorize_landscapes"}  # -> the chain model it repeats
RUNS = Path("reports/peft_study/runs")
app = typer.Typer(add_completion=False, help=__doc__.split("\n\n")[0])


def run_key(transfer: str, method: str, lr: float, seed: int, rank: int | None = None, epochs: int | None = None) -> str:
    return (f"{transfer}-{method}{'' if rank is None else f'-r{rank}'}-lr{lr:g}-seed{seed}"
            f"{'' if epochs is None else f'-epochs{epochs}'}")


@app.command()
@one_line_errors
def run(
    transfer: str = typer.Argument(..., help=f"Which adaptation: {', '.join(TRANSFERS)}."),
    method: str = typer.Argument(..., help=f"Fine-tuning method: {', '.join(METHODS)}."),
    lr: float = typer.Argument(..., help="Learning rate."),
    seed: int = typer.Argument(..., help="Training seed (adapt.seed for this run)."),
    rank: Optional[int] = typer.Option(None, help="LoRA rank (default: adapt.lora_rank); alpha scales with it."),
    epochs: Optional[int] = typer.Option(None, min=1, help="Epochs instead of adapt.epochs: an equal-time run, not an equal-step one."),
    params_file: Path = PARAMS_OPTION,
    quiet: bool = QUIET_OPTION,
) -> None:
    """Train one method on one transfer into models/study/KEY (resumable like any stage) and write
    reports/peft_study/runs/KEY.json: its scores, the input's, time, memory and stored bytes."""
    if transfer not in TRANSFERS:
        raise UserError(f"transfer: unknown {transfer!r} (choose from {', '.join(TRANSFERS)})")
    if method not in METHODS:
        raise UserError(f"method: unknown {method!r} (choose from {', '.join(METHODS)})")
    params = load_params(params_file)
    chain = MODELS[TRANSFERS[transfer]]
    schedule = dataclasses.replace(params.adapt, method=method, lr=lr, seed=seed)
    if rank is not None:  # alpha / rank stays the default's scale
        schedule = dataclasses.replace(schedule, lora_rank=rank, lora_alpha=params.adapt.lora_alpha * rank / params.adapt.lora_rank)
    if epochs is not None:
        schedule = dataclasses.replace(schedule, epochs=epochs)
    key = run_key(transfer, method, lr, seed, rank, epochs)
    job = TrainJob(name=key, stage="study/dvc.yaml", task=chain.task, domain=chain.domain,
                   data_dir=chain.data_directory(PREPARED_DATA), out_dir=MODELS_DIR / "study" / key,
                   model=params.model, diffusion=params.diffusion, schedule=schedule,
                   init=MODELS[chain.parent].directory())
    outcome = Trainer(job, Limits(quiet=quiet)).run()
    if outcome is Outcome.PAUSED:
        raise typer.Exit(EXIT_PAUSED)
    if outcome is Outcome.INTERRUPTED:
        raise typer.Exit(EXIT_INTERRUPTED)

    device = default_device()
    inception, fid_reason = metrics.inception_or_reason(params.evaluate.inception_weights)
    inception = inception.to(device) if inception is not None else None
    model = load_model(job.out_dir, device)
    result = evaluate_model(model, load_domain(job.data_dir), params.evaluate, inception, fid_reason, 0,
                            progress=not quiet, desc=f"evaluate {key}")
    meta, timings = model.meta, model.meta.timings()
    record = {"transfer": transfer, "method": method, "lr": lr, "seed": seed, "lora_rank": schedule.lora_rank if method == "lora" else None,
              "budget": "equal_steps" if epochs is None else "equal_time", "epochs": schedule.epochs,
              "scores": result.metrics, "timings": timings, "steps": meta.step,
              "seconds_per_step": round(timings["total_seconds"] / meta.step, 5),
              "trainable": meta.trainable, "weights_bytes": (job.out_dir / WEIGHTS).stat().st_size}
    write_json(RUNS / f"{key}.json", record)
    say(f"study: {key}: PSNR {result.metrics['psnr']} (input {result.metrics['input_psnr']}), SWD {result.metrics['swd']}, "
        f"val loss {meta.history[-1].val_loss:.4f}")


def summarise(runs: list[dict]) -> dict:
    """Per transfer, per (method, rank, lr, budget): the seeds' mean scores; the learning rate each method
    does best with at equal steps (lowest mean validation loss); and each setting's share of full
    fine-tuning's PSNR gain over the input (full at equal steps: the reference of both budgets)."""
    summary = {}
    for transfer in TRANSFERS:
        mine = [r for r in runs if r["transfer"] == transfer]
        settings: dict[tuple, list[dict]] = {}
        for r in mine:  # runs written before equal-time runs existed were all equal-step ones
            budget = r.get("budget", "equal_steps")
            settings.setdefault((r["method"], r["lora_rank"], r["lr"], budget), []).append(r)
        rows = []
        for (method, rank, lr, budget), group in sorted(settings.items(), key=lambda item: setting_order(*item[0])):
            rows.append({
                "method": method, "lora_rank": rank, "lr": lr, "budget": budget, "seeds": sorted(r["seed"] for r in group),
                "psnr": round(statistics.fmean([r["scores"]["psnr"] for r in group]), 2),
                "psnr_spread": round(max(r["scores"]["psnr"] for r in group) - min(r["scores"]["psnr"] for r in group), 2),
                "swd": round(statistics.fmean([r["scores"]["swd"] for r in group]), 1),
                "val_loss": round(statistics.fmean([r["timings"]["final_val_loss"] for r in group]), 4),
                "input_psnr": group[0]["scores"]["input_psnr"],
                "seconds_per_step": round(statistics.fmean([r["seconds_per_step"] for r in group]), 4),
                "steps": group[0]["steps"],
                "trainable_percent": group[0]["trainable"]["trainable_percent"],
                "weights_bytes": group[0]["weights_bytes"],
                "peak_memory_mb": round(statistics.fmean([r["timings"]["peak_memory_mb"] for r in group]), 0),
            })
        full = [row for row in rows if row["method"] == "full" and row["budget"] == "equal_steps"]
        reference = max(full, key=lambda row: row["psnr"]) if full else None
        for row in rows:
            if reference:
                gain = reference["psnr"] - row["input_psnr"]
                row["gain_share"] = round((row["psnr"] - row["input_psnr"]) / gain, 3) if gain > 0 else None
                row["stored_percent"] = round(100 * row["weights_bytes"] / reference["weights_bytes"], 2)
        best = {}
        for row in rows:
            name = setting_name(row)
            if row["budget"] == "equal_steps" and (name not in best or row["val_loss"] < best[name]["val_loss"]):
                best[name] = row
        summary[transfer] = {"rows": rows, "best_lr": {name: row["lr"] for name, row in best.items()}}
    return summary


def setting_order(method: str, rank: int | None, lr: float, budget: str) -> tuple:
    """Equal-step rows first, then equal-time ones; each in METHODS' order, then rank and learning rate."""
    return budget != "equal_steps", METHODS.index(method), rank or 0, lr


def setting_name(row: dict) -> str:
    return row["method"] if row["lora_rank"] is None else f"{row['method']} r{row['lora_rank']}"


def markdown(summary: dict) -> str:
    lines = ["# Parameter-efficient fine-tuning: every method on both transfers", "",
             "Each run: params adapt's epochs and batch (an equal step budget), from the chain's parent, scored on",
             "the chain's test images; a row is the mean over its seeds (spread: max - min PSNR). gain share: the",
             "share of full fine-tuning's PSNR gain over the grayscale input the method recovers. stored: weights",
             "file bytes against full fine-tuning's. Rows marked 'equal time' train the epochs full fine-tuning's",
             "time buys the method (study/dvc.yaml, stage equal_time). Made by `dvc repro study/dvc.yaml` (stages/peft_study.py).", ""]
    for transfer, part in summary.items():
        floor = part["rows"][0]["input_psnr"] if part["rows"] else None
        lines += [f"## {transfer} ({'task transfer: from the inpainting base' if transfer == 'faces' else 'domain transfer: from colorize_faces'}); "
                  f"grayscale input {floor} dB", "",
                  "| method | lr | seeds | steps | PSNR | spread | SWD | val loss | gain share | trainable % | stored % | s/step | peak MB |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for row in part["rows"]:
            name = setting_name(row)
            if row["budget"] == "equal_time":
                name, chosen = f"{name}, equal time", ""
            else:
                chosen = " *" if part["best_lr"].get(name) == row["lr"] else ""
            lines.append(f"| {name}{chosen} | {row['lr']:g} | {len(row['seeds'])} | {row['steps']} | {row['psnr']:.2f} | {row['psnr_spread']:.2f} "
                         f"| {row['swd']:.1f} | {row['val_loss']:.4f} | {row.get('gain_share')} | {row['trainable_percent']:.2f} "
                         f"| {row.get('stored_percent')} | {row['seconds_per_step']:.4f} | {row['peak_memory_mb']:.0f} |")
        lines += ["", "\\* the learning rate with the method's lowest validation loss.", ""]
    return "\n".join(lines)


@app.command()
@one_line_errors
def table(runs_dir: Path = typer.Option(RUNS, help="Where the runs' JSON files are."),
          out: Path = typer.Option(Path("reports/peft_study"), help="Where table.md and summary.json go.")) -> None:
    """Gather every run into OUT/table.md (the study's table) and OUT/summary.json."""
    runs = [json.loads(path.read_text()) for path in sorted(runs_dir.glob("*.json"))]
    if not runs:
        raise UserError(f"{runs_dir}: no runs (run `dvc repro study/dvc.yaml`)")
    summary = summarise(runs)
    write_json(out / "summary.json", summary)
    text = markdown(summary)
    atomic_write(out / "table.md", lambda f: f.write(text.encode()))
    say(f"study: wrote {out / 'table.md'} and {out / 'summary.json'} from {len(runs)} runs")


if __name__ == "__main__":
    app()
