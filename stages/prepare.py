"""Stage `prepare`: build data/prepared/{faces,landscapes}/ from params.yaml's `data` section."""

from __future__ import annotations

from pathlib import Path

import typer

from diffmodel.chain import PREPARED_DATA
from diffmodel.config import ConfigError, load_params
from diffmodel.data.sources import prepare_domain
from diffmodel.errors import one_line_errors
from stages.common import PARAMS_OPTION, QUIET_OPTION, say

DOMAINS = ("faces", "landscapes")
app = typer.Typer(add_completion=False)


@app.command()
@one_line_errors
def prepare(
    params_file: Path = PARAMS_OPTION,
    out: Path = typer.Option(PREPARED_DATA, help="Where to write one directory per domain."),
    quiet: bool = QUIET_OPTION,
) -> None:
    """Render (source: synthetic) or load (source: folder) each domain's images, split them
    into train/val/test, and write data/prepared/<domain>/ - uint8 arrays train.npy, val.npy,
    test.npy and manifest.json (counts, source, Algorithm 2's subsets, content hash, skipped
    files).

    Reads params: data.*. Unreadable images in a folder are skipped and listed in the manifest.
    """
    data = load_params(params_file).data
    for name in DOMAINS:  # every folder is checked before anything is written
        domain = data.domain(name)
        if domain.source == "folder" and not Path(domain.root).is_dir():
            raise ConfigError(f"data.{name}.root: folder not found: {domain.root}")
    for name in DOMAINS:
        domain = data.domain(name)
        manifest = prepare_domain(name, domain, data.image_size, data.seed, data.num_subsets, out / name, progress=not quiet)
        skipped = f", {len(manifest['skipped'])} unreadable files skipped (listed in manifest.json)" if manifest["skipped"] else ""
        say(f"prepare: {name} ({manifest['source']}): {manifest['counts']} at {data.image_size}px, "
            f"{data.num_subsets} training subsets{skipped} -> {out / name}")


if __name__ == "__main__":
    app()
