"""Full-range YCbCr (JPEG; ITU-R BT.601 luma): the one definition of the gray the colorization
models see (model/tasks.py), of the chroma class fidelity compares (evaluation/class_fidelity.py)
and of the luminance a colorized photo keeps (cli/photos.py). Rows: Y, Cb, Cr, of R, G, B."""

from __future__ import annotations

import numpy as np

TO_YCBCR = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
TO_RGB = np.linalg.inv(TO_YCBCR)
