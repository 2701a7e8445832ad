"""Synthetic faces: background, neck, shoulders and clothing, hair, ears, face, brows, eyes, nose, lips."""

from __future__ import annotations

import numpy as np

from .canvas import ellipse, grid, paint, param, pick, rgb

_BACKGROUNDS = np.array([(40, 55, 92), (88, 128, 100), (200, 140, 128), (168, 198, 222), (236, 226, 206)], np.float32)
_SKIN = np.array([(92, 58, 40), (190, 130, 98), (246, 210, 186)], np.float32)  # dark, medium, light
_HAIR = np.array([(28, 24, 22), (96, 62, 38), (170, 78, 38), (200, 160, 95), (222, 221, 218)], np.float32)
_CLOTHES = np.array([(30, 30, 35), (45, 65, 130), (190, 55, 55), (70, 150, 120), (210, 170, 70), (236, 236, 230)], np.float32)
_IRIS = np.array([(80, 50, 28), (70, 110, 160), (85, 120, 70)], np.float32)
_LIP_RED = np.array((190, 45, 60), np.float32)
_SCLERA = np.array((236, 233, 228), np.float32)


def draw_faces(u: np.ndarray, res: int) -> np.ndarray:
    y, x = grid(res)
    y, x = 2 * y - 1, 2 * x - 1  # faces use [-1, 1] with the origin at the image centre
    img = np.empty((3, len(u), res, res), np.float32)
    background = pick(_BACKGROUNDS, u[:, 0:2], jitter=0.05)
    img[:] = background * (1.06 - 0.06 * y + param(u, 2, -0.05, 0.05) * x)

    cx, cy, scale, tilt = param(u, 3, -0.1, 0.1), param(u, 4, -0.08, 0.02), param(u, 5, 0.85, 1.05), param(u, 6, -0.14, 0.14)
    dx, dy = x - cx, y - cy
    fx = (dx * np.cos(tilt) + dy * np.sin(tilt)) / scale  # head frame: follows the tilt
    fy = (dy * np.cos(tilt) - dx * np.sin(tilt)) / scale
    bx, by = dx / scale, dy / scale  # body frame: shoulders stay level
    ax = np.abs(fx)  # mirrored x draws symmetric pairs (eyes, brows, ears) in one go

    t = u[:, 7]
    skin = rgb(np.stack([np.interp(t, [0, 0.5, 1], _SKIN[:, c]) for c in range(3)], -1))
    hair = pick(_HAIR, u[:, 8:10], jitter=0.06)
    long_hair = (u[:, 10] < 0.45).reshape(-1, 1, 1)
    fw, fh = param(u, 11, 0.39, 0.44), param(u, 12, 0.53, 0.58)

    paint(img, ellipse(bx, by, 0, 1.35, 1.0, 0.62), pick(_CLOTHES, u[:, 13:15], jitter=0.04))
    cap = ellipse(fx, fy, 0, -0.07, fw + 0.06, fh + 0.03) & (fy < 0.0)
    # Long hair falls straight down from the head and ends in a rounded edge on the shoulders.
    hair_end = param(u, 26, 0.62, 0.85) - 0.12 * (ax / (fw + 0.12)) ** 2
    mane = (ellipse(fx, fy, 0, -0.04, fw + 0.13, fh + 0.1) | ((ax < fw + 0.12) & (fy > 0) & (by < hair_end))) & long_hair
    paint(img, cap | mane, hair * 0.85)
    # The neck ends where the clothing starts; a collar opening (V or round) shows skin below it.
    neck_x = bx + 0.5 * np.sin(tilt)  # straight neck, under the chin of the tilted head
    neck = (np.abs(neck_x) < 0.15) & (by > 0.2) & (by < 0.8)
    v_collar = (u[:, 27] < 0.5).reshape(-1, 1, 1)
    opening = np.where(v_collar, np.abs(neck_x) < 0.9 * (0.95 - by), ellipse(neck_x, by, 0, 0.74, 0.2, 0.1))
    paint(img, neck | ((by > 0.6) & opening), skin * 0.8)
    paint(img, neck & (by < fh + 0.07), skin * 0.64)  # shadow under the chin
    paint(img, ellipse(ax, fy, fw - 0.01, 0.0, 0.06, 0.11), skin * 0.88)

    half_width = fw * (1 - 0.22 * np.clip(fy / fh, 0, 1) ** 2)  # narrower towards the chin
    radius = (fx / half_width) ** 2 + (fy / fh) ** 2
    face = radius < 1
    paint(img, face, skin * (1.04 - 0.16 * radius))
    hairline = param(u, 15, -0.36, -0.26) + 0.45 * (fx / fw) ** 2 + param(u, 16, -0.12, 0.12) * fx
    fringe = face & ((fy < hairline) | (long_hair & (ax > fw - 0.05) & (fy < 0.05)))
    paint(img, fringe, hair)

    ex, ey = param(u, 17, 0.15, 0.18), param(u, 18, -0.07, -0.03)
    brow_x = ax - ex
    brow = (np.abs(brow_x) < 0.085) & (np.abs(fy - (ey - 0.1 + 2.0 * (brow_x + 0.02) ** 2)) < 0.024)
    paint(img, brow, hair * 0.75)
    paint(img, ellipse(ax, fy, ex, ey, 0.092, 0.05), skin * 0.45)
    sclera = ellipse(ax, fy, ex, ey, 0.08, 0.038)
    paint(img, sclera, rgb(_SCLERA))
    gaze = param(u, 19, -0.02, 0.02)
    iris_x = np.minimum(np.abs(fx - ex - gaze), np.abs(fx + ex - gaze))
    iris_d2 = iris_x ** 2 + (fy - ey) ** 2
    paint(img, sclera & (iris_d2 < 0.034 ** 2), pick(_IRIS, u[:, 20:22], jitter=0.05))
    paint(img, iris_d2 < 0.015 ** 2, rgb((15, 12, 12)))

    light = np.where(u[:, 22] < 0.5, -1.0, 1.0).reshape(-1, 1, 1).astype(np.float32)
    paint(img, (fx * light > 0.015) & (fx * light < 0.05) & (fy > ey + 0.05) & (fy < 0.15), skin * 0.86)
    paint(img, ellipse(fx, fy, 0, 0.17, 0.065, 0.028), skin * 0.88)
    paint(img, ellipse(ax, fy, 0.028, 0.18, 0.016, 0.009), skin * 0.45)

    my, mw = param(u, 23, 0.29, 0.33), param(u, 24, 0.12, 0.16)
    lip = 0.88 * (0.45 * skin + 0.55 * rgb(_LIP_RED))
    mouth_y = fy + param(u, 25, 0.0, 0.04) * (fx / mw) ** 2  # > 0 raises the corners: a smile
    paint(img, ellipse(fx, mouth_y, 0, my - 0.012, mw, 0.026) & (mouth_y < my), lip)
    paint(img, ellipse(fx, mouth_y, 0, my, mw * 0.85, 0.04) & (mouth_y >= my), lip * 1.08)
    paint(img, (np.abs(mouth_y - my) < 0.007) & (np.abs(fx) < mw * 0.95), lip * 0.45)
    return img
