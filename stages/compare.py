"""Stage `compare`: the paper's tables with this run's measured numbers beside the paper's."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import typer

from diffmodel import report
from diffmodel.chain import MODELS
from diffmodel.checkpoint import atomic_write, write_json
from diffmodel.compare import markdown_tables
from stages.common import say, user_errors_are_one_line

app = typer.Typer(add_completion=False)


def read_history(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


@app.command()
@user_errors_are_one_line
def compare(
    reports: Path = typer.Option(Path("reports"), help="Where the evaluate stages wrote their files."),
) -> None:
    """Build the comparison tables of the chain against its baselines.

    Reads reports/metrics.json and reports/timings.json (chain), reports/baselines/metrics.json
    and reports/baselines/timings.json (baselines) and reports/loss/MODEL.csv. Writes
    reports/tables.md (one table per target, the paper's figures beside ours),
    reports/summary.json (the ratios, a DVC metric) and reports/loss_curves.png.
    """
    metrics, timings = {}, {}
    for directory in (reports, reports / "baselines"):
        metrics.update(json.loads((directory / "metrics.json").read_text()))
        timings.update(json.loads((directory / "timings.json").read_text()))
    histories = {name: read_history(reports / "loss" / f"{name}.csv") for name in MODELS if (reports / "loss" / f"{name}.csv").exists()}

    text, summary = markdown_tables(metrics, timings, histories)
    atomic_write(reports / "tables.md", lambda f: f.write(text.encode()))
    write_json(reports / "summary.json", summary)
    series = {name: [(row["epoch"], row["val_loss"]) for row in history] for name, history in histories.items()}
    report.line_chart(series, reports / "loss_curves.png", "Validation loss of every training stage", "epoch", "validation loss (EMA weights)")
    say(f"compare: wrote {reports / 'tables.md'}, {reports / 'summary.json'} and {reports / 'loss_curves.png'}")


if __name__ == "__main__":
    app()
