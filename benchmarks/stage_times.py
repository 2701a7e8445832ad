"""Where a `dvc repro` spends its minutes: run a command, time each stage it runs, print the table.

    .venv/bin/python -m benchmarks.stage_times --log repro.log -- make repro

A stage's seconds run from DVC's "Running stage 'NAME'" line to the next stage's (the last one's
to the command's end), so DVC's own work between stages is counted in the stage before it; what
comes before the first stage (make's install, DVC's start) is its own row. Stages DVC skips
("didn't change", restored from the cache) are listed without seconds. The command's output is
passed through, and with --log written with each line's seconds since the start.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

RUNNING = re.compile(r"Running stage '([^']+)'")
SKIPPED = re.compile(r"Stage '([^']+)' (?:didn't change|is cached)")
BEFORE = "(before the first stage)"


def stage_seconds(lines: list[tuple[float, str]], end: float) -> list[tuple[str, float | None]]:
    """[(stage, seconds or None when skipped)] from (seconds since the start, line) pairs and the
    command's end; the timed rows add up to `end`."""
    rows: list[tuple[str, float | None]] = []
    starts: list[tuple[str, float]] = [(BEFORE, 0.0)]
    for at, line in lines:
        if match := RUNNING.search(line):
            starts.append((match.group(1), at))
        elif match := SKIPPED.search(line):
            rows.append((match.group(1), None))
    ends = [at for _, at in starts[1:]] + [end]
    timed = [(name, stop - start) for (name, start), stop in zip(starts, ends)]
    return timed + rows


def table(rows: list[tuple[str, float | None]], total: float) -> str:
    out = ["| stage | seconds | share |", "| --- | --- | --- |"]
    for name, seconds in rows:
        out.append(f"| {name} | - | - |" if seconds is None else f"| {name} | {seconds:.0f} | {100 * seconds / total:.0f} % |")
    out.append(f"| all | {total:.0f} | |")
    return "\n".join(out)


def run(command: list[str], log: Path | None) -> tuple[list[tuple[float, str]], float, int]:
    start = time.monotonic()
    lines = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1) as process:
        for line in process.stdout:
            lines.append((time.monotonic() - start, line.rstrip("\n")))
            sys.stdout.write(line)
    end = time.monotonic() - start
    if log:
        log.write_text("".join(f"{at:9.1f} {line}\n" for at, line in lines))
    return lines, end, process.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stage_times", description=__doc__.splitlines()[0])
    parser.add_argument("--log", type=Path, default=None, help="also write the output here, each line with its seconds")
    parser.add_argument("command", nargs="+", help="the command to time, after --: make repro, dvc repro, ...")
    args = parser.parse_args(argv)
    lines, end, code = run(args.command, args.log)
    print(table(stage_seconds(lines, end), end))
    return code


if __name__ == "__main__":
    sys.exit(main())
