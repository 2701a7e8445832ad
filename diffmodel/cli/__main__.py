"""`python -m diffmodel.cli`: the same as the `diffmodel` command."""

from .app import app

app(prog_name="diffmodel")
