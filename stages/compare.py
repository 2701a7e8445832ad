"""Stage `compare`: the paper's tables with this run's measured numbers beside the paper's."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import typer

from diffmodel.chain import MODELS
from diffmodel.errors import one_line_errors
from diffmodel.files import atomic_write, write_json
from diffmodel.reporting import figures
from diffmodel.reporting.guidance_tables import guidance_table
from diffmodel.reporting.peft_tables import peft_tables
from diffmodel.reporting.tables import COMPARISONS, ancestors, markdown_tables, metric_row, sampler_table
from stages.common import say

app = typer.Typer(add_completion=False)


def read_history(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


@app.command()
@one_line_errors
def compare(
    reports: Path = typer.Option(Path("reports"), help="Where the evaluate stages wrote their files."),
) -> None:
    """Build the comparison tables of the chain against its baselines.

    Reads reports/scores.json and reports/timings.json (chain), reports/baselines/ and
    reports/peft/ (the same files for the baselines and the PEFT twins), reports/samplers.json
    and reports/guidance/scores.json (if there), reports/loss/MODEL.csv and reports/peft/paper_scale.json
    (what PEFT trains of the paper-scale U-Net, written by evaluate_peft). Writes
    reports/tables.md (one table per target, the paper's figures beside ours, the training time
    each baseline needed to reach its chain model's quality), reports/summary.json (every
    ratio), reports/metrics/vs_*.json (the equal-quality time ratios, DVC metrics),
    reports/loss_curves.png and reports/time_to_quality/KEY.png (validation loss against
    training seconds, chain model and baseline).
    """
    scores, timings = {}, {}
    for directory in (reports, reports / "baselines", reports / "peft"):
        if directory.name == "peft" and not (directory / "scores.json").exists():
            continue  # the PEFT twins are optional for a hand-run compare
        scores.update(json.loads((directory / "scores.json").read_text()))
        timings.update(json.loads((directory / "timings.json").read_text()))
    histories = {name: read_history(reports / "loss" / f"{name}.csv") for name in MODELS if (reports / "loss" / f"{name}.csv").exists()}

    text, summary = markdown_tables(scores, timings, histories)
    if (reports / "samplers.json").exists():
        text += "\n" + sampler_table(json.loads((reports / "samplers.json").read_text()))
    paper_scale = reports / "peft" / "paper_scale.json"
    paper_share = json.loads(paper_scale.read_text()) if paper_scale.exists() else None
    peft_text, summary["peft"] = peft_tables(scores, timings, histories, paper_share)
    text += "\n" + peft_text
    if (reports / "guidance" / "scores.json").exists():
        guidance = json.loads((reports / "guidance" / "scores.json").read_text())
        text += "\n" + guidance_table(guidance)
        summary["guidance"] = {row["setting"]: {k: row[k] for k in ("psnr", "ssim", "class_accuracy", "colour_distance")}
                               for row in guidance["rows"]}
    atomic_write(reports / "tables.md", lambda f: f.write(text.encode()))
    write_json(reports / "summary.json", summary)
    for comparison in COMPARISONS:
        write_json(reports / "metrics" / f"{comparison.row}.json", metric_row(summary[comparison.key]))
        series = {name: curve(histories.get(name, [])) for name in (comparison.ours, comparison.baseline)}
        parents = ancestors(comparison.ours)
        if parents:  # the adapted model's curve, shifted by what its parents cost to train
            offset = sum(timings[name]["total_seconds"] for name in parents)
            series[f"{comparison.ours} incl. {' + '.join(parents)}"] = curve(histories.get(comparison.ours, []), offset)
        figures.line_chart(series, reports / "time_to_quality" / f"{comparison.key}.png", comparison.title,
                          "training seconds", "validation loss (EMA weights)")
    loss_curves = {name: [(row["epoch"], row["val_loss"]) for row in history] for name, history in histories.items()}
    figures.line_chart(loss_curves, reports / "loss_curves.png", "Validation loss of every training stage", "epoch",
                      "validation loss (EMA weights)")
    say(f"compare: wrote {reports / 'tables.md'}, {reports / 'summary.json'}, {reports / 'metrics'}/*.json, "
        f"{reports / 'loss_curves.png'} and {reports / 'time_to_quality'}/")


def curve(history: list[dict], offset: float = 0.0) -> list[tuple[float, float]]:
    """(training seconds at the end of each epoch, validation loss), starting after `offset` seconds;
    train_seconds is the loss CSV's cumulative column (stages/train.py writes it)."""
    return [(offset + row["train_seconds"], row["val_loss"]) for row in history]


if __name__ == "__main__":
    app()
