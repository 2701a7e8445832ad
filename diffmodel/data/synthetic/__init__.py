"""Procedural faces and landscapes: the built-in stand-in for CelebA-HQ and Places2.

Images are drawn at twice the requested size with numpy masks over coordinate grids, a
chunk of images at a time, then averaged 2x2 down so edges are antialiased. Every image
is fully determined by one row of uniform random numbers drawn up front, so the same
seed gives byte-identical output.

Faces: gradient background, neck with a shadow under the chin, shoulders and clothing
with a V or round collar, hair (black, brown, red, blond, grey; short, or long down to
the shoulders), ears, an egg-shaped face with soft shading, hairline,
eyebrows, two eyes (sclera, iris, pupil), nose shadow and nostrils, lips. Pose, size and
position are jittered. Landscapes come in four classes under two superclasses:
*mountain* (sky, sun, clouds, 1-3 ridges, snow caps on half of them, the ground in front)
of grey granite and green meadows (`alpine`) or red sandstone and ochre ground
(`red_rock`), and *forest* (sky, sun, clouds, distant hills, three rows of conifers and
round crowns, sometimes a lake in front of the middle row reflecting what stands above it,
grass) in green (`summer_forest`) or orange and brown (`autumn_forest`).
The sky is drawn knowing the skyline, so the sun is never hidden behind what stands in
front of it: a sunset sun sits on the ridge or the treetops, a day sun stays clear above.

Colour follows structure and luminance on purpose, except for what the class label says.
The colorization models trained on these images must beat their grayscale input, which is
only possible if chroma can be inferred from what a grayscale image shows. So every palette
is chosen with gray levels that differ clearly between hues (black < brown < red < blond <
grey hair; dark skin is darker than light skin; clothing and face backgrounds come in bands
of luminance), brightness jitter only scales a colour, and some hues are tied to a place
(lips red, sky blue or sunset orange, snow white). Sunset skies always show a large low
sun, darker tops and dark clouds, so they are told from day skies in grayscale. Faces are
symmetric so a masked part can be inpainted from the rest. The two classes of a superclass
are the exception: their palettes have the same luminance and their shapes the same
distribution, so in gray an autumn forest is a summer forest and red rock is granite - only
the label tells their colours apart (FineDiffusion's fine classes; diffmodel/classes.py).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .canvas import check, chunks, finish
from .faces import draw_faces
from .landscapes import draw_forests, draw_mountains

LANDSCAPE_CLASSES = ("alpine", "red_rock", "summer_forest", "autumn_forest")
LANDSCAPE_SUPERCLASSES = {"mountain": ("alpine", "red_rock"), "forest": ("summer_forest", "autumn_forest")}


def render_faces(count: int, size: int, seed: int) -> np.ndarray:
    """Return `count` synthetic faces as uint8 (count, size, size, 3)."""
    check(count, size)
    u = np.random.default_rng(seed).random((count, 32), dtype=np.float32)
    out = np.empty((count, size, size, 3), np.uint8)
    for start, stop in chunks(count, size):
        noise = np.random.default_rng([seed, start]).standard_normal((stop - start, 2 * size, 2 * size), np.float32)
        out[start:stop] = finish(draw_faces(u[start:stop], 2 * size), noise)
    return out


def render_landscapes(count: int, size: int, seed: int,
                      classes: Sequence[str] = LANDSCAPE_CLASSES) -> tuple[np.ndarray, np.ndarray]:
    """Return uint8 images (count, size, size, 3) and int64 labels indexing `classes`."""
    check(count, size)
    classes = tuple(classes)
    unknown = [c for c in classes if c not in LANDSCAPE_CLASSES]
    if unknown or not classes:
        raise ValueError(f"unknown landscape class {unknown[0] if unknown else '(none given)'!r}; "
                         f"known classes: {', '.join(LANDSCAPE_CLASSES)}")
    draw = {"alpine": lambda u, res, noise: draw_mountains(u, res, noise, red=False),
            "red_rock": lambda u, res, noise: draw_mountains(u, res, noise, red=True),
            "summer_forest": lambda u, res, noise: draw_forests(u, res, noise, autumn=False),
            "autumn_forest": lambda u, res, noise: draw_forests(u, res, noise, autumn=True)}
    u = np.random.default_rng(seed).random((count, 256), dtype=np.float32)
    labels = np.minimum((u[:, -1] * len(classes)).astype(np.int64), len(classes) - 1)
    out = np.empty((count, size, size, 3), np.uint8)
    for start, stop in chunks(count, size):
        noise = np.random.default_rng([seed, start]).standard_normal((stop - start, 2 * size, 2 * size), np.float32)
        for k, name in enumerate(classes):
            idx = np.flatnonzero(labels[start:stop] == k)
            if idx.size:
                out[start + idx] = finish(draw[name](u[start + idx], 2 * size, noise[idx]), noise[idx])
    return out, labels
