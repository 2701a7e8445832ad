"""The pipeline's stage commands, one per DVC stage: `python -m stages.NAME --help` says what each reads and writes."""
