"""Settings for the whole test session.

`make test` runs the suite in two pytest-xdist workers, one per core of a 2-core machine
(pyproject.toml: addopts). Each worker, and every process it starts (DVC stages, torchrun),
then keeps to one thread: two PyTorch processes whose OpenMP threads spin-wait for each
other's cores slow down many times over. Must run before anything imports torch.
"""

import os

if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"
