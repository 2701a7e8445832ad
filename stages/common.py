"""What every stage command shares: reading params.yaml, exit statuses, one-line errors.

Exit statuses (the contract DVC and users rely on):
    0   done
    2   bad input (params, data, checkpoint): one line on stderr, no traceback (diffmodel/errors.py)
    75  paused by a session or time limit; state saved - run the stage again to continue
    130 stopped by SIGINT/SIGTERM; state saved - run the stage again to continue
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

EXIT_PAUSED = 75  # sysexits' EX_TEMPFAIL: "try again later"
EXIT_INTERRUPTED = 130

PARAMS_OPTION = typer.Option(Path("params.yaml"), "--params", help="The params file to read.", dir_okay=False)
QUIET_OPTION = typer.Option(False, "--quiet", "-q", envvar="DIFFMODEL_QUIET", help="No progress bars (for CI logs).")


def say(message: str) -> None:
    typer.echo(message)
    sys.stdout.flush()
