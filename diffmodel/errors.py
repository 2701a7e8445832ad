"""The one base class of every mistake a user can make (params, data, checkpoints, command lines),
and the one way to report it: `error: <message>` on one line, exit status 2, no traceback.
Anything that is not a UserError is a bug and shows its traceback."""

from __future__ import annotations

import functools
from typing import NoReturn

import typer

EXIT_BAD_INPUT = 2


class UserError(ValueError):
    """A one-line, user-facing problem; the message says what is wrong and, where it can, what to do."""


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_BAD_INPUT)


def one_line_errors(command):
    """Decorates a Typer command: a UserError raised anywhere below it ends it with one line and status 2."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except UserError as err:
            fail(str(err))

    return wrapper
