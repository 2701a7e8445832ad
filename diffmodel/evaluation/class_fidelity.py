"""Class fidelity of a colorization: does the output have the colours of the class asked for?

PSNR cannot tell: it compares with the true image, so asking for another class on purpose
must lower it, and a model that ignores the label scores the same whatever it is asked.
Fidelity is a colour-only nearest-class-mean classifier: an image is summarised by the
histogram of its chroma (ITU-R 601 Cb and Cr, BINS x BINS bins over +-CHROMA_RANGE, outer bins
open-ended), a class by the mean histogram of its real training images, and an image belongs
to the class whose mean is nearest in L1 distance. Luminance is left out on purpose: it is the
model's input, not its work.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..data.colour import TO_YCBCR
from ..errors import UserError

BINS = 9  # odd: neutral gray (Cb = Cr = 0) lies mid-bin, not on an edge where rounding would pick the side
CHROMA_RANGE = 0.25  # Cb, Cr on the [0, 1] scale lie in [-0.5, 0.5]; image colours rarely leave +-0.25


def chroma(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cb and Cr (ITU-R 601, [0, 1] scale) of (B, 3, H, W) images in [-1, 1]."""
    r, g, b = ((images.double() + 1) / 2).unbind(1)
    (cb_r, cb_g, cb_b), (cr_r, cr_g, cr_b) = TO_YCBCR[1:].tolist()
    return cb_r * r + cb_g * g + cb_b * b, cr_r * r + cr_g * g + cr_b * b


def chroma_histograms(images: torch.Tensor) -> torch.Tensor:
    """(B, BINS * BINS) histograms of (Cb, Cr), each summing to 1."""
    cb, cr = chroma(images)

    def bin_of(values: torch.Tensor) -> torch.Tensor:
        return ((values + CHROMA_RANGE) / (2 * CHROMA_RANGE) * BINS).floor().long().clamp(0, BINS - 1)

    index = (bin_of(cb) * BINS + bin_of(cr)).flatten(1)
    counts = torch.zeros(index.shape[0], BINS * BINS, dtype=torch.float64)
    counts.scatter_add_(1, index.cpu(), torch.ones_like(index, dtype=torch.float64).cpu())
    return counts / index.shape[1]


@dataclass
class ColourClassifier:
    means: torch.Tensor  # (classes, BINS * BINS): each class's mean histogram

    @classmethod
    def fit(cls, batches, classes: int) -> ColourClassifier:
        """From (images, labels) batches of real images; every class must occur."""
        sums = torch.zeros(classes, BINS * BINS, dtype=torch.float64)
        counts = torch.zeros(classes, dtype=torch.float64)
        for images, labels in batches:
            labels = torch.as_tensor(np.array(labels), dtype=torch.long)  # a copy: labels may be a read-only memmap
            sums.index_add_(0, labels, chroma_histograms(images))
            counts += torch.bincount(labels, minlength=classes).double()
        if (counts == 0).any():
            raise UserError(f"no training images of class {int((counts == 0).nonzero()[0])} to learn its colours from")
        return cls(sums / counts[:, None])

    def distances(self, images: torch.Tensor) -> torch.Tensor:
        """(B, classes) L1 distance of each image's histogram to each class's mean."""
        return torch.cdist(chroma_histograms(images), self.means, p=1)

    def predict(self, images: torch.Tensor) -> np.ndarray:
        return self.distances(images).argmin(1).numpy()

    def fidelity(self, images: torch.Tensor, target: np.ndarray) -> dict:
        """How often the colours say the target class, the mean L1 distance to its colours, and the
        class each image's colours say."""
        distances = self.distances(images)
        target = torch.as_tensor(np.array(target), dtype=torch.long)
        predicted = distances.argmin(1)
        return {"class_accuracy": round((predicted == target).double().mean().item(), 4),
                "colour_distance": round(distances.gather(1, target[:, None]).mean().item(), 4),
                "predicted": predicted.numpy()}
