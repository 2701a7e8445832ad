"""Figures people look at: sample grids, denoising-process strips and line charts (PIL only).

Layout of grids and strips, in pixels: a header strip of HEADER_HEIGHT (only when there
are titles), then cells of (H*scale, W*scale) separated from each other and from the
border by GAP of white:

    width  = GAP + columns * (W*scale + GAP)
    height = header + GAP + rows * (H*scale + GAP)
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont

from ..data.tensors import to_uint8
from ..files import atomic_write

GAP = 2
HEADER_HEIGHT = 18
FONT_SIZE = 12
WHITE, BLACK, GRID_GRAY, AXIS_GRAY = (255, 255, 255), (0, 0, 0), (228, 228, 228), (90, 90, 90)
# Tableau 10: distinct, and still tellable apart by most colour-blind readers
SERIES_COLOURS = [
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
]


def _font() -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=FONT_SIZE)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        return ImageFont.load_default()


def _fit_text(draw: ImageDraw.ImageDraw, text: str, font, max_width: int) -> str:
    """Shorten text with '...' until it fits max_width pixels."""
    if draw.textlength(text, font=font) <= max_width:
        return text
    while text and draw.textlength(text + "...", font=font) > max_width:
        text = text[:-1]
    return text + "..." if text else ""


def _save(image: Image.Image, path) -> Path:
    path = Path(path)
    atomic_write(path, lambda f: image.save(f, format="PNG"))
    return path


def _grid(columns: list[torch.Tensor], titles: list[str] | None, path, scale: int, max_rows: int) -> Path:
    """Shared layout of sample grids and process strips: one row per image, one column per entry."""
    if not columns:
        raise ValueError("nothing to draw: no columns")
    cells = [to_uint8(column[:max_rows]) for column in columns]
    shapes = {c.shape for c in cells}
    if len(shapes) != 1:
        raise ValueError(f"all columns must hold images of one shape, got {sorted(shapes)}")
    rows, height, width = cells[0].shape[:3]
    cell_w, cell_h = width * scale, height * scale
    header = HEADER_HEIGHT if titles else 0

    canvas = Image.new("RGB", (GAP + len(cells) * (cell_w + GAP), header + GAP + rows * (cell_h + GAP)), WHITE)
    draw = ImageDraw.Draw(canvas)
    font = _font()
    for c, column in enumerate(cells):
        x = GAP + c * (cell_w + GAP)
        if titles:
            title = _fit_text(draw, titles[c], font, cell_w)
            draw.text((x + cell_w / 2, header / 2), title, fill=BLACK, font=font, anchor="mm")
        for r in range(rows):
            cell = Image.fromarray(column[r]).resize((cell_w, cell_h), Image.Resampling.NEAREST)
            canvas.paste(cell, (x, header + GAP + r * (cell_h + GAP)))
    return _save(canvas, path)


def sample_grid(columns: dict[str, torch.Tensor], path, scale: int = 4, max_rows: int = 8) -> Path:
    """E.g. {"ground truth": gt, "condition": cond, "output": out}: one row per image (the
    first max_rows), one titled column per entry, pixels upscaled by `scale`; saved as PNG."""
    return _grid(list(columns.values()), list(columns), path, scale, max_rows)


def process_strip(frames: list[torch.Tensor], path, scale: int = 4, labels: list[str] | None = None, max_rows: int = 4) -> Path:
    """The denoising process (Palette's Figure 9): frames[k] is the (B,3,H,W) batch at step k,
    from pure noise to the final output; one row per image, one column per frame."""
    if labels is not None and len(labels) != len(frames):
        raise ValueError(f"{len(labels)} labels for {len(frames)} frames")
    return _grid(frames, labels, path, scale, max_rows)


def photo_panel(photos: dict[str, "np.ndarray"], path, columns: int = 2) -> Path:
    """Photos at their own size (uint8 (H, W, 3), all one size), each under its title, `columns` to a row."""
    titles, pixels = list(photos), list(photos.values())
    height, width = pixels[0].shape[:2]
    rows = math.ceil(len(pixels) / columns)
    cell_h = HEADER_HEIGHT + height + GAP
    canvas = Image.new("RGB", (GAP + columns * (width + GAP), GAP + rows * cell_h), WHITE)
    draw, font = ImageDraw.Draw(canvas), _font()
    for k, (title, image) in enumerate(zip(titles, pixels)):
        x, y = GAP + (k % columns) * (width + GAP), GAP + (k // columns) * cell_h
        draw.text((x, y + HEADER_HEIGHT / 2), _fit_text(draw, title, font, width), fill=BLACK, font=font, anchor="lm")
        canvas.paste(Image.fromarray(image), (x, y + HEADER_HEIGHT))
    return _save(canvas, path)


# ----------------------------------------------------------------------------- line chart

def nice_ticks(low: float, high: float, target_count: int = 5) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten apart) spanning [low, high]."""
    raw_step = (high - low) / max(target_count, 1)
    magnitude = 10 ** math.floor(math.log10(raw_step))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw_step)
    first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
    return [i * step for i in range(first, last + 1)]


def _padded_range(values: list[float]) -> tuple[float, float]:
    if not values:
        return 0.0, 1.0
    low, high = min(values), max(values)
    if low == high:  # a single point or a flat line: give it room instead of dividing by zero
        pad = abs(low) * 0.1 or 1.0
        return low - pad, high + pad
    return low, high


def _tick_label(value: float, ticks: list[float]) -> str:
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    return f"{value:.{decimals}f}"


def line_chart(series: dict[str, list[tuple[float, float]]], path, title: str, xlabel: str, ylabel: str, size=(640, 400)) -> Path:
    """Multi-series line chart (e.g. loss curves) with round-number ticks, light grid and a
    legend. Non-finite points are dropped; a lone point is drawn as a dot; empty series
    still get a legend entry marked '(no data)'."""
    points = {name: [(float(x), float(y)) for x, y in pts if math.isfinite(x) and math.isfinite(y)] for name, pts in series.items()}
    all_points = [p for pts in points.values() for p in pts]
    x_ticks = nice_ticks(*_padded_range([x for x, _ in all_points]))
    y_ticks = nice_ticks(*_padded_range([y for _, y in all_points]))
    x_labels = [_tick_label(v, x_ticks) for v in x_ticks]
    y_labels = [_tick_label(v, y_ticks) for v in y_ticks]

    width, height = size
    image = Image.new("RGB", size, WHITE)
    draw = ImageDraw.Draw(image)
    font = _font()
    line_height = FONT_SIZE + 4

    # Plot area: leave room for the title above, tick labels and axis labels around it.
    left = 6 + line_height + 6 + max(int(draw.textlength(label, font=font)) for label in y_labels) + 6
    right = width - 16 - int(draw.textlength(x_labels[-1], font=font)) // 2
    top = 8 + line_height + 8
    bottom = height - (6 + line_height + 4 + line_height + 4)

    def to_pixel(x: float, y: float) -> tuple[float, float]:
        px = left + (x - x_ticks[0]) / (x_ticks[-1] - x_ticks[0]) * (right - left)
        py = bottom - (y - y_ticks[0]) / (y_ticks[-1] - y_ticks[0]) * (bottom - top)
        return px, py

    for value, label in zip(x_ticks, x_labels):
        px, _ = to_pixel(value, y_ticks[0])
        draw.line([(px, top), (px, bottom)], fill=GRID_GRAY)
        draw.line([(px, bottom), (px, bottom + 4)], fill=AXIS_GRAY)
        draw.text((px, bottom + 6), label, fill=BLACK, font=font, anchor="mt")
    for value, label in zip(y_ticks, y_labels):
        _, py = to_pixel(x_ticks[0], value)
        draw.line([(left, py), (right, py)], fill=GRID_GRAY)
        draw.line([(left - 4, py), (left, py)], fill=AXIS_GRAY)
        draw.text((left - 6, py), label, fill=BLACK, font=font, anchor="rm")
    draw.rectangle([(left, top), (right, bottom)], outline=AXIS_GRAY)

    draw.text((width / 2, 8), _fit_text(draw, title, font, width - 16), fill=BLACK, font=font, anchor="mt")
    draw.text(((left + right) / 2, height - 6), _fit_text(draw, xlabel, font, right - left), fill=BLACK, font=font, anchor="mb")
    ylabel_image = Image.new("RGB", (bottom - top, line_height), WHITE)
    ImageDraw.Draw(ylabel_image).text(
        ((bottom - top) / 2, line_height / 2), _fit_text(draw, ylabel, font, bottom - top), fill=BLACK, font=font, anchor="mm"
    )
    image.paste(ylabel_image.rotate(90, expand=True), (6, top))

    for i, pts in enumerate(points.values()):
        colour = SERIES_COLOURS[i % len(SERIES_COLOURS)]
        pixels = [to_pixel(x, y) for x, y in pts]
        if len(pixels) > 1:
            draw.line(pixels, fill=colour, width=2, joint="curve")
        elif pixels:
            (px, py), r = pixels[0], 3
            draw.ellipse([(px - r, py - r), (px + r, py + r)], fill=colour)

    if not all_points:
        draw.text(((left + right) / 2, (top + bottom) / 2), "no data", fill=AXIS_GRAY, font=font, anchor="mm")
    if points:
        _legend(draw, font, points, right, top, line_height)
    return _save(image, path)


def _legend(draw, font, points: dict[str, list], right: int, top: int, line_height: int) -> None:
    """Boxed legend in the plot's upper-right corner, where decreasing loss curves leave room."""
    entries = [name if pts else f"{name} (no data)" for name, pts in points.items()]
    swatch = 16
    box_width = swatch + 6 + max(int(draw.textlength(entry, font=font)) for entry in entries) + 12
    x0, y0 = right - 8 - box_width, top + 8
    draw.rectangle([(x0, y0), (right - 8, y0 + 6 + len(entries) * line_height)], fill=WHITE, outline=GRID_GRAY)
    for i, entry in enumerate(entries):
        y = y0 + 3 + i * line_height + line_height / 2
        colour = SERIES_COLOURS[i % len(SERIES_COLOURS)]
        draw.line([(x0 + 6, y), (x0 + 6 + swatch, y)], fill=colour, width=2)
        draw.text((x0 + 6 + swatch + 6, y), entry, fill=BLACK, font=font, anchor="lm")
