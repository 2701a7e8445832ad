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

LANDSCAPE_CLASSES = ("alpine", "red_rock", "summer_forest", "autumn_forest")
LANDSCAPE_SUPERCLASSES = {"mountain": ("alpine", "red_rock"), "forest": ("summer_forest", "autumn_forest")}

_CHUNK_PIXELS = 1 << 21  # render pixels per chunk: big numpy ops at 32 px, bounded memory at 256 px
_NOISE = 0.025  # relative per-pixel luminance noise, so surfaces are not flat

_BACKGROUNDS = np.array([(40, 55, 92), (88, 128, 100), (200, 140, 128), (168, 198, 222), (236, 226, 206)], np.float32)
_SKIN = np.array([(92, 58, 40), (190, 130, 98), (246, 210, 186)], np.float32)  # dark, medium, light
_HAIR = np.array([(28, 24, 22), (96, 62, 38), (170, 78, 38), (200, 160, 95), (222, 221, 218)], np.float32)
_CLOTHES = np.array([(30, 30, 35), (45, 65, 130), (190, 55, 55), (70, 150, 120), (210, 170, 70), (236, 236, 230)], np.float32)
_IRIS = np.array([(80, 50, 28), (70, 110, 160), (85, 120, 70)], np.float32)
_LIP_RED = np.array((190, 45, 60), np.float32)
_SCLERA = np.array((236, 233, 228), np.float32)

_DAY_SKY = np.array([(50, 100, 185), (172, 206, 236)], np.float32)  # top, horizon
_SUNSET_SKY = np.array([(62, 52, 100), (250, 150, 70)], np.float32)
# Each class's twin palette has the same ITU-R 601 luminance, row by row (tests/test_synthetic.py).
_ROCK = np.array([(118, 124, 142), (112, 104, 100), (88, 76, 66)], np.float32)  # far, mid, near
_RED_ROCK = np.array([(180, 106, 75), (153, 90, 63), (114, 67, 47)], np.float32)
_MEADOW = np.array((80, 122, 55), np.float32)
_DESERT = np.array((127, 98, 59), np.float32)
_CONIFER = np.array((34, 78, 44), np.float32)
_LEAVES = np.array((62, 112, 46), np.float32)
_AUTUMN = np.array([(151, 71, 24), (124, 84, 27), (176, 57, 31)], np.float32)  # each as bright as _LEAVES
_SUMMER_GRASS = np.array((88, 138, 50), np.float32)
_AUTUMN_GRASS = np.array((123, 120, 52), np.float32)
_UNDERGROWTH = np.array((38, 58, 30), np.float32)


def render_faces(count: int, size: int, seed: int) -> np.ndarray:
    """Return `count` synthetic faces as uint8 (count, size, size, 3)."""
    _check(count, size)
    u = np.random.default_rng(seed).random((count, 32), dtype=np.float32)
    out = np.empty((count, size, size, 3), np.uint8)
    for start, stop in _chunks(count, size):
        noise = np.random.default_rng([seed, start]).standard_normal((stop - start, 2 * size, 2 * size), np.float32)
        out[start:stop] = _finish(_draw_faces(u[start:stop], 2 * size), noise)
    return out


def render_landscapes(count: int, size: int, seed: int,
                      classes: Sequence[str] = LANDSCAPE_CLASSES) -> tuple[np.ndarray, np.ndarray]:
    """Return uint8 images (count, size, size, 3) and int64 labels indexing `classes`."""
    _check(count, size)
    classes = tuple(classes)
    unknown = [c for c in classes if c not in LANDSCAPE_CLASSES]
    if unknown or not classes:
        raise ValueError(f"unknown landscape class {unknown[0] if unknown else '(none given)'!r}; "
                         f"known classes: {', '.join(LANDSCAPE_CLASSES)}")
    draw = {"alpine": lambda u, res, noise: _draw_mountains(u, res, noise, red=False),
            "red_rock": lambda u, res, noise: _draw_mountains(u, res, noise, red=True),
            "summer_forest": lambda u, res, noise: _draw_forests(u, res, noise, autumn=False),
            "autumn_forest": lambda u, res, noise: _draw_forests(u, res, noise, autumn=True)}
    u = np.random.default_rng(seed).random((count, 256), dtype=np.float32)
    labels = np.minimum((u[:, -1] * len(classes)).astype(np.int64), len(classes) - 1)
    out = np.empty((count, size, size, 3), np.uint8)
    for start, stop in _chunks(count, size):
        noise = np.random.default_rng([seed, start]).standard_normal((stop - start, 2 * size, 2 * size), np.float32)
        for k, name in enumerate(classes):
            idx = np.flatnonzero(labels[start:stop] == k)
            if idx.size:
                out[start + idx] = _finish(draw[name](u[start + idx], 2 * size, noise[idx]), noise[idx])
    return out, labels


def _check(count: int, size: int) -> None:
    if count < 0 or size < 1:
        raise ValueError(f"need count >= 0 and size >= 1, got count={count}, size={size}")


def _chunks(count: int, size: int):
    step = max(1, _CHUNK_PIXELS // (4 * size * size))
    for start in range(0, count, step):
        yield start, min(count, start + step)


def _finish(img: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """Add luminance noise, then average 2x2 blocks down to the output size (antialiasing)."""
    img *= 1 + _NOISE * noise
    small = 0.25 * (img[..., ::2, ::2] + img[..., 1::2, ::2] + img[..., ::2, 1::2] + img[..., 1::2, 1::2])
    return np.clip(np.rint(small), 0, 255).astype(np.uint8).transpose(1, 2, 3, 0)


def _grid(res: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in [0, 1): y of shape (1, res, 1), x of shape (1, 1, res)."""
    c = (np.arange(res, dtype=np.float32) + 0.5) / res
    return c.reshape(1, res, 1), c.reshape(1, 1, res)


def _param(u: np.ndarray, k: int, lo: float, hi: float) -> np.ndarray:
    """Column k of u mapped to [lo, hi), shaped (b, 1, 1) to broadcast over an image."""
    return (lo + (hi - lo) * u[:, k]).reshape(-1, 1, 1)


# Images are planar float32 (3, b, H, W) while drawing: colours broadcast as (3, b, 1, 1)
# and painting is arithmetic blending, several times faster than masked copies.

def _rgb(color) -> np.ndarray:
    """A constant colour, or (..., 3) colours, as planar (3, ...) broadcastable to an image."""
    color = np.asarray(color, np.float32)
    return np.moveaxis(color, -1, 0).reshape((3,) + color.shape[:-1] + (1,) * (4 - color.ndim))


def _pick(palette: np.ndarray, u: np.ndarray, jitter: float = 0.0) -> np.ndarray:
    """One palette colour per image, brightness-scaled by up to +-jitter (hue unchanged)."""
    rows = palette[np.minimum((u[:, 0] * len(palette)).astype(int), len(palette) - 1)]
    scale = 1 + jitter * (2 * u[:, 1:2] - 1) if jitter else 1
    return _rgb(rows * scale)


def _paint(img: np.ndarray, mask: np.ndarray, color) -> None:
    img += mask.astype(np.float32) * (color - img)


def _ellipse(x, y, cx, cy, rx, ry) -> np.ndarray:
    return ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 < 1


def _draw_faces(u: np.ndarray, res: int) -> np.ndarray:
    y, x = _grid(res)
    y, x = 2 * y - 1, 2 * x - 1  # faces use [-1, 1] with the origin at the image centre
    img = np.empty((3, len(u), res, res), np.float32)
    background = _pick(_BACKGROUNDS, u[:, 0:2], jitter=0.05)
    img[:] = background * (1.06 - 0.06 * y + _param(u, 2, -0.05, 0.05) * x)

    cx, cy, scale, tilt = _param(u, 3, -0.1, 0.1), _param(u, 4, -0.08, 0.02), _param(u, 5, 0.85, 1.05), _param(u, 6, -0.14, 0.14)
    dx, dy = x - cx, y - cy
    fx = (dx * np.cos(tilt) + dy * np.sin(tilt)) / scale  # head frame: follows the tilt
    fy = (dy * np.cos(tilt) - dx * np.sin(tilt)) / scale
    bx, by = dx / scale, dy / scale  # body frame: shoulders stay level
    ax = np.abs(fx)  # mirrored x draws symmetric pairs (eyes, brows, ears) in one go

    t = u[:, 7]
    skin = _rgb(np.stack([np.interp(t, [0, 0.5, 1], _SKIN[:, c]) for c in range(3)], -1))
    hair = _pick(_HAIR, u[:, 8:10], jitter=0.06)
    long_hair = (u[:, 10] < 0.45).reshape(-1, 1, 1)
    fw, fh = _param(u, 11, 0.39, 0.44), _param(u, 12, 0.53, 0.58)

    _paint(img, _ellipse(bx, by, 0, 1.35, 1.0, 0.62), _pick(_CLOTHES, u[:, 13:15], jitter=0.04))
    cap = _ellipse(fx, fy, 0, -0.07, fw + 0.06, fh + 0.03) & (fy < 0.0)
    # Long hair falls straight down from the head and ends in a rounded edge on the shoulders.
    hair_end = _param(u, 26, 0.62, 0.85) - 0.12 * (ax / (fw + 0.12)) ** 2
    mane = (_ellipse(fx, fy, 0, -0.04, fw + 0.13, fh + 0.1) | ((ax < fw + 0.12) & (fy > 0) & (by < hair_end))) & long_hair
    _paint(img, cap | mane, hair * 0.85)
    # The neck ends where the clothing starts; a collar opening (V or round) shows skin below it.
    neck_x = bx + 0.5 * np.sin(tilt)  # straight neck, under the chin of the tilted head
    neck = (np.abs(neck_x) < 0.15) & (by > 0.2) & (by < 0.8)
    v_collar = (u[:, 27] < 0.5).reshape(-1, 1, 1)
    opening = np.where(v_collar, np.abs(neck_x) < 0.9 * (0.95 - by), _ellipse(neck_x, by, 0, 0.74, 0.2, 0.1))
    _paint(img, neck | ((by > 0.6) & opening), skin * 0.8)
    _paint(img, neck & (by < fh + 0.07), skin * 0.64)  # shadow under the chin
    _paint(img, _ellipse(ax, fy, fw - 0.01, 0.0, 0.06, 0.11), skin * 0.88)

    half_width = fw * (1 - 0.22 * np.clip(fy / fh, 0, 1) ** 2)  # narrower towards the chin
    radius = (fx / half_width) ** 2 + (fy / fh) ** 2
    face = radius < 1
    _paint(img, face, skin * (1.04 - 0.16 * radius))
    hairline = _param(u, 15, -0.36, -0.26) + 0.45 * (fx / fw) ** 2 + _param(u, 16, -0.12, 0.12) * fx
    fringe = face & ((fy < hairline) | (long_hair & (ax > fw - 0.05) & (fy < 0.05)))
    _paint(img, fringe, hair)

    ex, ey = _param(u, 17, 0.15, 0.18), _param(u, 18, -0.07, -0.03)
    brow_x = ax - ex
    brow = (np.abs(brow_x) < 0.085) & (np.abs(fy - (ey - 0.1 + 2.0 * (brow_x + 0.02) ** 2)) < 0.024)
    _paint(img, brow, hair * 0.75)
    _paint(img, _ellipse(ax, fy, ex, ey, 0.092, 0.05), skin * 0.45)
    sclera = _ellipse(ax, fy, ex, ey, 0.08, 0.038)
    _paint(img, sclera, _rgb(_SCLERA))
    gaze = _param(u, 19, -0.02, 0.02)
    iris_x = np.minimum(np.abs(fx - ex - gaze), np.abs(fx + ex - gaze))
    iris_d2 = iris_x ** 2 + (fy - ey) ** 2
    _paint(img, sclera & (iris_d2 < 0.034 ** 2), _pick(_IRIS, u[:, 20:22], jitter=0.05))
    _paint(img, iris_d2 < 0.015 ** 2, _rgb((15, 12, 12)))

    light = np.where(u[:, 22] < 0.5, -1.0, 1.0).reshape(-1, 1, 1).astype(np.float32)
    _paint(img, (fx * light > 0.015) & (fx * light < 0.05) & (fy > ey + 0.05) & (fy < 0.15), skin * 0.86)
    _paint(img, _ellipse(fx, fy, 0, 0.17, 0.065, 0.028), skin * 0.88)
    _paint(img, _ellipse(ax, fy, 0.028, 0.18, 0.016, 0.009), skin * 0.45)

    my, mw = _param(u, 23, 0.29, 0.33), _param(u, 24, 0.12, 0.16)
    lip = 0.88 * (0.45 * skin + 0.55 * _rgb(_LIP_RED))
    mouth_y = fy + _param(u, 25, 0.0, 0.04) * (fx / mw) ** 2  # > 0 raises the corners: a smile
    _paint(img, _ellipse(fx, mouth_y, 0, my - 0.012, mw, 0.026) & (mouth_y < my), lip)
    _paint(img, _ellipse(fx, mouth_y, 0, my, mw * 0.85, 0.04) & (mouth_y >= my), lip * 1.08)
    _paint(img, (np.abs(mouth_y - my) < 0.007) & (np.abs(fx) < mw * 0.95), lip * 0.45)
    return img




def _draw_sky(u: np.ndarray, res: int, horizon: np.ndarray, skyline: np.ndarray):
    """Sky gradient, sun and clouds (columns 0-19 of u).

    `skyline` (b, W) is the top of whatever will be drawn over the sky in each column: a
    low sunset sun sits on it, partly set, and a day sun stays clear of it, so the sun is
    never hidden behind the ridges or trees painted later.
    Returns the image, the sunset flags (b, 1, 1), the light colour for the ground (warm
    and dim at sunset), the horizon colour, used as haze on distant things, and the side
    (b, 1) of the image the light comes from (-1 left, 1 right).
    """
    y, x = _grid(res)
    sunset = (u[:, 0] < 0.35).reshape(-1, 1, 1)

    def by_time(at_sunset, by_day):
        return np.where(sunset, _rgb(at_sunset), _rgb(by_day))

    brightness = _param(u, 1, 0.95, 1.05)
    top = by_time(_SUNSET_SKY[0], _DAY_SKY[0]) * brightness
    horizon_color = by_time(_SUNSET_SKY[1], _DAY_SKY[1]) * brightness
    img = np.empty((3, len(u), res, res), np.float32)
    img[:] = top + (horizon_color - top) * np.clip(y / horizon, 0, 1) ** 0.9

    # A sunset always shows a large sun low in the sky; a day sun is small, high and optional.
    has_sun = sunset | (u[:, 2] < 0.4).reshape(-1, 1, 1)
    sun_x = _param(u, 3, 0.15, 0.85)
    sun_r = np.where(sunset, _param(u, 5, 0.07, 0.095), _param(u, 5, 0.035, 0.055))
    under_sun = np.abs(x[0] - sun_x[:, 0]) < sun_r[:, 0]
    ground = np.where(under_sun, skyline, 1.0).min(1).reshape(-1, 1, 1)  # highest foreground below the sun
    setting = ground - sun_r * _param(u, 4, 0.1, 0.6)
    high = np.minimum(_param(u, 4, 0.08, 0.3), ground - 1.5 * sun_r)
    sun_y = np.maximum(np.where(sunset, setting, high), 0.8 * sun_r)
    d2 = (x - sun_x) ** 2 + (y - sun_y) ** 2
    glow = has_sun * np.exp(-d2 / (3 * sun_r) ** 2) * np.where(sunset, 0.75, 0.35)
    img += glow * (by_time((255, 205, 130), (245, 248, 255)) - img)
    _paint(img, has_sun & (d2 < sun_r ** 2), by_time((255, 228, 160), (255, 252, 236)))

    cloud_color = by_time((150, 95, 112), (246, 247, 252))
    for k in range(3):
        c = 6 + 4 * k
        cx, w = _param(u, c + 1, 0.0, 1.0), _param(u, c + 3, 0.06, 0.16)
        cy = 0.06 + (horizon - 0.25) * _param(u, c + 2, 0.0, 1.0)
        cloud = (_ellipse(x, y, cx, cy, w, 0.35 * w) | _ellipse(x, y, cx - 0.6 * w, cy + 0.1 * w, 0.6 * w, 0.25 * w)
                 | _ellipse(x, y, cx + 0.55 * w, cy + 0.08 * w, 0.55 * w, 0.28 * w))
        cloud &= (u[:, c] < 0.5).reshape(-1, 1, 1)
        _paint(img, cloud, cloud_color * (1 - 0.15 * np.clip((y - cy) / (0.3 * w), 0, 1)))
    light_side = np.where(sun_x[:, 0, 0] < 0.5, -1.0, 1.0)  # lit flanks face the sun (or where it would be)
    return img, sunset, by_time((0.85, 0.62, 0.55), (1, 1, 1)), horizon_color, light_side


def _ridge_outline(u: np.ndarray, j: int, xs: np.ndarray, horizon: np.ndarray):
    """Top (b, W) of mountain ridge j (0 far .. 2 near) and the x of the peak each column belongs to."""
    lo, hi = ((0.25, 0.42), (0.16, 0.3), (0.08, 0.18))[j]
    p = u[:, 24 + 12 * j: 36 + 12 * j].reshape(-1, 4, 3)
    peak_x, peak_h, peak_w = p[:, 0, :, None], lo + (hi - lo) * p[:, 1, :, None], 0.2 + 0.25 * p[:, 2, :, None]
    skew = 0.6 * p[:, 3, :, None] - 0.3  # peaks with one steep and one gentle flank
    offset = xs[None] - peak_x
    tents = peak_h * (1 - np.abs(offset) / (peak_w * (1 + np.sign(offset) * skew)))
    which = tents.argmax(1)
    height = np.take_along_axis(tents, which[:, None], 1)[:, 0]
    phase = 2 * np.pi * u[:, 61 + j, None]
    rough = 0.012 * np.sin(2 * np.pi * 7 * xs + phase) + 0.006 * np.sin(2 * np.pi * 19 * xs + 3 * phase)
    top = horizon[:, :, 0] + 0.06 * j - np.maximum(height, 0) - rough
    return top, np.take_along_axis(peak_x[..., 0], which, 1)


def _draw_mountains(u: np.ndarray, res: int, noise: np.ndarray, red: bool) -> np.ndarray:
    y, x = _grid(res)
    xs = x[0]  # (1, W): ridge outlines are functions of x only
    horizon = _param(u, 20, 0.55, 0.7)
    n_ridges = 1 + (u[:, 22] * 3).astype(int)
    outlines = [_ridge_outline(u, j, xs, horizon) for j in range(3)]
    skyline = np.min([np.where((j < n_ridges)[:, None], top, 1.0) for j, (top, _) in enumerate(outlines)], axis=0)
    img, sunset, light, haze, sun_side = _draw_sky(u, res, horizon, skyline)
    snow_color = np.where(sunset, _rgb((250, 200, 182)), _rgb((242, 244, 250)))
    snowline = np.where(u[:, 70:71] < 0.5, _param(u, 23, 0.28, 0.45)[:, 0], -1.0)  # half of them without snow
    palette, ground = (_RED_ROCK, _DESERT) if red else (_ROCK, _MEADOW)
    for j, (top, peak_x) in enumerate(outlines):  # far to near
        ridge = (y >= top[:, None, :]) & (j < n_ridges).reshape(-1, 1, 1)
        # The flank of each peak turned to the sun is lit, the other one in shadow; both
        # fade into the darker foot of the ridge.
        side = np.sign(xs - peak_x) * sun_side[:, None]
        below = np.clip((y - top[:, None, :]) / 0.3, 0, 1)
        lit = (1 + 0.14 * side[:, None, :] * (1 - below)) * (1 - 0.15 * below)
        rock = _rgb(palette[j]) * light
        if j == 0:
            rock = 0.8 * rock + 0.2 * haze
        phase = 2 * np.pi * u[:, 61 + j, None]
        snow = y < (snowline + 0.015 * np.sin(2 * np.pi * 5 * xs + 2 * phase))[:, None, :]
        _paint(img, ridge & ~snow, rock * lit)
        _paint(img, ridge & snow, snow_color * lit)
    meadow_top = horizon + 0.12 + 0.015 * np.sin(2 * np.pi * (2 * x + _param(u, 60, 0, 1)))
    meadow = _rgb(ground) * light * (0.9 + 0.3 * (y - horizon))
    _paint(img, y >= meadow_top, meadow * (1 + 0.05 * np.roll(noise, 3, axis=1)))
    return img


_TREE_ROWS = ((16, 0.12, 0.4), (11, 0.18, 0.18), (7, 0.27, 0.0))  # far to near: trees, height, haze


def _tree_row(u: np.ndarray, r: int, xs: np.ndarray, horizon: np.ndarray, autumn: bool):
    """Outline of tree row r: its top (b, W), base (b, 1), each column's colour (b, W, 3) and leafiness."""
    n, height, _ = _TREE_ROWS[r]
    t = u[:, 64 + 64 * r: 64 + 64 * r + 4 * n].reshape(len(u), n, 4)
    base = horizon[:, :, 0] + 0.01 + 0.1 * r
    pos = (np.arange(n) + 0.2 + 0.6 * t[..., 0]) / n * 1.1 - 0.05
    h = (height * (0.75 + 0.5 * t[..., 1]))[..., None]
    conifer = t[..., 2] < 0.4  # conifers stay green in autumn
    dx = xs[None] - pos[..., None]
    radius = 0.42 * h
    crown = np.where(np.abs(dx) < radius, h - radius + np.sqrt(np.maximum(radius ** 2 - dx ** 2, 0)), -1.0)
    profile = np.where(conifer[..., None], h * (1 - np.abs(dx) / (0.36 * h)), crown)
    which = profile.argmax(1)  # the tree in front in each column
    top_h = np.take_along_axis(profile, which[:, None], 1)[:, 0]
    shade = np.floor(t[..., 3] * 3)
    colors = _AUTUMN[shade.astype(int)] if autumn else np.broadcast_to(_LEAVES, shade.shape + (3,))
    colors = np.where(conifer[..., None], _CONIFER, colors) * (0.92 + 0.16 * (t[..., 3] * 3 - shade))[..., None]
    color = np.take_along_axis(colors, which[..., None], 1)
    lateral = np.take_along_axis(dx, which[:, None], 1)[:, 0] / (0.4 * np.take_along_axis(h[..., 0], which, 1))
    bare = top_h <= 0.003
    color[bare] = _UNDERGROWTH
    leafy = ~np.take_along_axis(conifer, which, 1) & ~bare
    return base - np.maximum(top_h, 0), base, color, np.clip(lateral, -1, 1), leafy


def _draw_forests(u: np.ndarray, res: int, noise: np.ndarray, autumn: bool) -> np.ndarray:
    y, x = _grid(res)
    xs = x[0]
    horizon = _param(u, 20, 0.42, 0.56)
    lake = (u[:, 24] < 0.4).reshape(-1, 1, 1)
    shore_y = horizon + 0.12  # a lake starts below the middle row of trees; the near row is left out
    hills = horizon[:, :, 0] - 0.04 - 0.02 * (1 + np.sin(2 * np.pi * (1.3 * xs + u[:, 23:24])))
    rows = [_tree_row(u, r, xs, horizon, autumn) for r in range(len(_TREE_ROWS))]
    skyline = np.min([hills] + [top for top, *_ in rows], axis=0)
    img, _, light, haze, sun_side = _draw_sky(u, res, horizon, skyline)
    _paint(img, y >= hills[:, None, :], 0.5 * _rgb((70, 105, 85)) * light + 0.5 * haze)

    # Autumn crowns are orange and brown where summer ones are green, at the same luminance.
    for r, (top, base, color, lateral, leafy) in enumerate(rows):
        height, haze_amount = _TREE_ROWS[r][1:]
        color = color * (1 + 0.15 * lateral * sun_side[:, None])[..., None]
        depth = np.clip((y - top[:, None, :]) / height, 0, 1)
        texture = 1 - 0.3 * depth + 0.1 * leafy[:, None, :] * np.roll(noise, 5 * r + 1, axis=2)
        color = np.moveaxis(color, -1, 0)[:, :, None, :] * light * (1 - haze_amount) + haze * haze_amount
        standing = (y >= top[:, None, :]) & ~(lake & (base[:, :, None] > shore_y))  # no trees in the lake
        _paint(img, standing, color * texture)

    # A lake mirrors the rows above its shore line, so its colour follows the sky and trees.
    lines = np.arange(res)
    shore = (shore_y[:, 0, 0] * res).astype(int)
    source = np.clip(2 * shore[:, None] - 1 - lines, 0, res - 1)
    ripple = 1 + 0.07 * np.sin(lines * 2 * np.pi / max(0.035 * res, 2.0))[:, None]
    water = np.take_along_axis(img, source[None, :, :, None], axis=2) * 0.75 * ripple + _rgb((12, 22, 30))
    _paint(img, lake & (lines[:, None] >= shore[:, None, None]), water)

    grass_top = np.where(lake, _param(u, 25, 0.86, 0.93), horizon + 0.26)
    grass_line = grass_top + 0.01 * np.sin(2 * np.pi * (3 * x + _param(u, 26, 0, 1)))
    grass = _rgb(_AUTUMN_GRASS if autumn else _SUMMER_GRASS)
    grass = grass * light * (0.9 + 0.3 * (y - grass_top))
    _paint(img, y >= grass_line, grass * (1 + 0.05 * np.roll(noise, 7, axis=1)))
    return img
