"""Scoring models: pixel metrics and FID, SWD, class fidelity, the test-set evaluation and the guidance study."""
