"""benchmarks/stage_times.py: each stage's seconds from DVC's own lines, and the table of shares."""

from __future__ import annotations

import sys

from benchmarks.stage_times import BEFORE, main, stage_seconds, table

DVC_OUTPUT = [  # what `dvc repro` prints, at the seconds it printed it
    (95.0, "Stage 'prepare' didn't change, skipping"),
    (96.5, "Running stage 'train@base':"),
    (97.0, "> python -m stages.train base"),
    (250.5, "Running stage 'evaluate@chain':"),
    (260.0, "Stage 'samplers' is cached - skipping run, checking out outputs"),
    (280.0, "Updating lock file 'dvc.lock'"),
]


def test_a_stage_runs_from_its_line_to_the_next_stages_and_skipped_stages_have_no_seconds():
    rows = stage_seconds(DVC_OUTPUT, end=300.0)
    assert rows == [(BEFORE, 96.5), ("train@base", 154.0), ("evaluate@chain", 49.5), ("prepare", None), ("samplers", None)]
    assert sum(seconds for _, seconds in rows if seconds) == 300.0


def test_the_table_gives_each_stage_its_share_of_the_whole():
    rows = stage_seconds(DVC_OUTPUT, end=300.0)
    assert table(rows, 300.0).splitlines()[2:] == [
        f"| {BEFORE} | 96 | 32 % |", "| train@base | 154 | 51 % |", "| evaluate@chain | 50 | 16 % |",
        "| prepare | - | - |", "| samplers | - | - |", "| all | 300 | |"]


def test_it_times_a_real_command_passes_its_output_through_and_returns_its_exit_code(tmp_path, capsys):
    script = "import time; print(\"Running stage 'a':\", flush=True); time.sleep(0.6); print(\"Running stage 'b':\"); raise SystemExit(3)"
    log = tmp_path / "repro.log"
    assert main(["--log", str(log), "--", sys.executable, "-c", script]) == 3
    out = capsys.readouterr().out
    assert "Running stage 'b':" in out
    a_row = next(line for line in out.splitlines() if line.startswith("| a |"))
    assert int(a_row.split("|")[2]) >= 1  # 0.6 s and more, rounded
    assert float(log.read_text().splitlines()[1].split()[0]) >= 0.6  # b's line, with its seconds
