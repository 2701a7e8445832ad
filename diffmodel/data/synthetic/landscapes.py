"""Synthetic landscapes: mountains (alpine, red rock) and forests (summer, autumn), under day or sunset skies."""

from __future__ import annotations

import numpy as np

from .canvas import ellipse, grid, paint, param, rgb

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


def _draw_sky(u: np.ndarray, res: int, horizon: np.ndarray, skyline: np.ndarray):
    """Sky gradient, sun and clouds (columns 0-19 of u).

    `skyline` (b, W) is the top of whatever will be drawn over the sky in each column: a
    low sunset sun sits on it, partly set, and a day sun stays clear of it, so the sun is
    never hidden behind the ridges or trees painted later.
    Returns the image, the sunset flags (b, 1, 1), the light colour for the ground (warm
    and dim at sunset), the horizon colour, used as haze on distant things, and the side
    (b, 1) of the image the light comes from (-1 left, 1 right).
    """
    y, x = grid(res)
    sunset = (u[:, 0] < 0.35).reshape(-1, 1, 1)

    def by_time(at_sunset, by_day):
        return np.where(sunset, rgb(at_sunset), rgb(by_day))

    brightness = param(u, 1, 0.95, 1.05)
    top = by_time(_SUNSET_SKY[0], _DAY_SKY[0]) * brightness
    horizon_color = by_time(_SUNSET_SKY[1], _DAY_SKY[1]) * brightness
    img = np.empty((3, len(u), res, res), np.float32)
    img[:] = top + (horizon_color - top) * np.clip(y / horizon, 0, 1) ** 0.9

    # A sunset always shows a large sun low in the sky; a day sun is small, high and optional.
    has_sun = sunset | (u[:, 2] < 0.4).reshape(-1, 1, 1)
    sun_x = param(u, 3, 0.15, 0.85)
    sun_r = np.where(sunset, param(u, 5, 0.07, 0.095), param(u, 5, 0.035, 0.055))
    under_sun = np.abs(x[0] - sun_x[:, 0]) < sun_r[:, 0]
    ground = np.where(under_sun, skyline, 1.0).min(1).reshape(-1, 1, 1)  # highest foreground below the sun
    setting = ground - sun_r * param(u, 4, 0.1, 0.6)
    high = np.minimum(param(u, 4, 0.08, 0.3), ground - 1.5 * sun_r)
    sun_y = np.maximum(np.where(sunset, setting, high), 0.8 * sun_r)
    d2 = (x - sun_x) ** 2 + (y - sun_y) ** 2
    glow = has_sun * np.exp(-d2 / (3 * sun_r) ** 2) * np.where(sunset, 0.75, 0.35)
    img += glow * (by_time((255, 205, 130), (245, 248, 255)) - img)
    paint(img, has_sun & (d2 < sun_r ** 2), by_time((255, 228, 160), (255, 252, 236)))

    cloud_color = by_time((150, 95, 112), (246, 247, 252))
    for k in range(3):
        c = 6 + 4 * k
        cx, w = param(u, c + 1, 0.0, 1.0), param(u, c + 3, 0.06, 0.16)
        cy = 0.06 + (horizon - 0.25) * param(u, c + 2, 0.0, 1.0)
        cloud = (ellipse(x, y, cx, cy, w, 0.35 * w) | ellipse(x, y, cx - 0.6 * w, cy + 0.1 * w, 0.6 * w, 0.25 * w)
                 | ellipse(x, y, cx + 0.55 * w, cy + 0.08 * w, 0.55 * w, 0.28 * w))
        cloud &= (u[:, c] < 0.5).reshape(-1, 1, 1)
        paint(img, cloud, cloud_color * (1 - 0.15 * np.clip((y - cy) / (0.3 * w), 0, 1)))
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


def draw_mountains(u: np.ndarray, res: int, noise: np.ndarray, red: bool) -> np.ndarray:
    y, x = grid(res)
    xs = x[0]  # (1, W): ridge outlines are functions of x only
    horizon = param(u, 20, 0.55, 0.7)
    n_ridges = 1 + (u[:, 22] * 3).astype(int)
    outlines = [_ridge_outline(u, j, xs, horizon) for j in range(3)]
    skyline = np.min([np.where((j < n_ridges)[:, None], top, 1.0) for j, (top, _) in enumerate(outlines)], axis=0)
    img, sunset, light, haze, sun_side = _draw_sky(u, res, horizon, skyline)
    snow_color = np.where(sunset, rgb((250, 200, 182)), rgb((242, 244, 250)))
    snowline = np.where(u[:, 70:71] < 0.5, param(u, 23, 0.28, 0.45)[:, 0], -1.0)  # half of them without snow
    palette, ground = (_RED_ROCK, _DESERT) if red else (_ROCK, _MEADOW)
    for j, (top, peak_x) in enumerate(outlines):  # far to near
        ridge = (y >= top[:, None, :]) & (j < n_ridges).reshape(-1, 1, 1)
        # The flank of each peak turned to the sun is lit, the other one in shadow; both
        # fade into the darker foot of the ridge.
        side = np.sign(xs - peak_x) * sun_side[:, None]
        below = np.clip((y - top[:, None, :]) / 0.3, 0, 1)
        lit = (1 + 0.14 * side[:, None, :] * (1 - below)) * (1 - 0.15 * below)
        rock = rgb(palette[j]) * light
        if j == 0:
            rock = 0.8 * rock + 0.2 * haze
        phase = 2 * np.pi * u[:, 61 + j, None]
        snow = y < (snowline + 0.015 * np.sin(2 * np.pi * 5 * xs + 2 * phase))[:, None, :]
        paint(img, ridge & ~snow, rock * lit)
        paint(img, ridge & snow, snow_color * lit)
    meadow_top = horizon + 0.12 + 0.015 * np.sin(2 * np.pi * (2 * x + param(u, 60, 0, 1)))
    meadow = rgb(ground) * light * (0.9 + 0.3 * (y - horizon))
    paint(img, y >= meadow_top, meadow * (1 + 0.05 * np.roll(noise, 3, axis=1)))
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


def draw_forests(u: np.ndarray, res: int, noise: np.ndarray, autumn: bool) -> np.ndarray:
    y, x = grid(res)
    xs = x[0]
    horizon = param(u, 20, 0.42, 0.56)
    lake = (u[:, 24] < 0.4).reshape(-1, 1, 1)
    shore_y = horizon + 0.12  # a lake starts below the middle row of trees; the near row is left out
    hills = horizon[:, :, 0] - 0.04 - 0.02 * (1 + np.sin(2 * np.pi * (1.3 * xs + u[:, 23:24])))
    rows = [_tree_row(u, r, xs, horizon, autumn) for r in range(len(_TREE_ROWS))]
    skyline = np.min([hills] + [top for top, *_ in rows], axis=0)
    img, _, light, haze, sun_side = _draw_sky(u, res, horizon, skyline)
    paint(img, y >= hills[:, None, :], 0.5 * rgb((70, 105, 85)) * light + 0.5 * haze)

    # Autumn crowns are orange and brown where summer ones are green, at the same luminance.
    for r, (top, base, color, lateral, leafy) in enumerate(rows):
        height, haze_amount = _TREE_ROWS[r][1:]
        color = color * (1 + 0.15 * lateral * sun_side[:, None])[..., None]
        depth = np.clip((y - top[:, None, :]) / height, 0, 1)
        texture = 1 - 0.3 * depth + 0.1 * leafy[:, None, :] * np.roll(noise, 5 * r + 1, axis=2)
        color = np.moveaxis(color, -1, 0)[:, :, None, :] * light * (1 - haze_amount) + haze * haze_amount
        standing = (y >= top[:, None, :]) & ~(lake & (base[:, :, None] > shore_y))  # no trees in the lake
        paint(img, standing, color * texture)

    # A lake mirrors the rows above its shore line, so its colour follows the sky and trees.
    lines = np.arange(res)
    shore = (shore_y[:, 0, 0] * res).astype(int)
    source = np.clip(2 * shore[:, None] - 1 - lines, 0, res - 1)
    ripple = 1 + 0.07 * np.sin(lines * 2 * np.pi / max(0.035 * res, 2.0))[:, None]
    water = np.take_along_axis(img, source[None, :, :, None], axis=2) * 0.75 * ripple + rgb((12, 22, 30))
    paint(img, lake & (lines[:, None] >= shore[:, None, None]), water)

    grass_top = np.where(lake, param(u, 25, 0.86, 0.93), horizon + 0.26)
    grass_line = grass_top + 0.01 * np.sin(2 * np.pi * (3 * x + param(u, 26, 0, 1)))
    grass = rgb(_AUTUMN_GRASS if autumn else _SUMMER_GRASS)
    grass = grass * light * (0.9 + 0.3 * (y - grass_top))
    paint(img, y >= grass_line, grass * (1 + 0.05 * np.roll(noise, 7, axis=1)))
    return img
