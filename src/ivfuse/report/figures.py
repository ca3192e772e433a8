"""Figures of a benchmark report: a comparison grid of images and bar charts of a comparison table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .._files import atomic_write
from ..io import read_array

__all__ = ["bar_charts", "comparison_grid"]


def _thumb(arr: np.ndarray, height: int):
    from PIL import Image

    a = arr
    if a.dtype == np.uint16:
        a = (a.astype(np.float32) / 257).round().astype(np.uint8)
    im = Image.fromarray(a).convert("RGB")
    w = max(1, round(im.width * height / im.height))
    return im.resize((w, height), Image.BILINEAR)


def _placeholder(height: int):
    from PIL import Image, ImageDraw

    im = Image.new("RGB", (height, height), (200, 200, 200))
    ImageDraw.Draw(im).text((4, height // 2 - 6), "unreadable", fill=(150, 0, 0))
    return im


def comparison_grid(rows: Sequence[Sequence[tuple[str, Path]]], out: Path, thumb_height: int = 150,
                    errors: list[tuple[str, str, str]] | None = None) -> Path:
    """Write a grid image: one row per pair, one labelled column per image (ir, vis, methods...).

    An image that cannot be read gets a gray "unreadable" cell, and ``(label, path, message)`` is
    appended to ``errors`` (when given); the rest of the grid is drawn.
    """
    from PIL import Image, ImageDraw

    label_h = 16

    def cell(label: str, p: Path):
        try:
            return label, _thumb(read_array(p), thumb_height)
        except Exception as exc:  # noqa: BLE001 -- one bad image must not cost the whole grid
            if errors is not None:
                errors.append((label, str(p), str(exc) or type(exc).__name__))
            return label, _placeholder(thumb_height)

    cells = [[cell(label, p) for label, p in row] for row in rows]
    ncol = max(len(r) for r in cells)
    col_w = [max((r[c][1].width for r in cells if c < len(r)), default=0) for c in range(ncol)]
    grid = Image.new("RGB", (sum(col_w) + 2 * (ncol + 1), len(cells) * (thumb_height + label_h + 2) + 2), "white")
    draw = ImageDraw.Draw(grid)
    y = 2
    for r in cells:
        x = 2
        for c, (label, im) in enumerate(r):
            grid.paste(im, (x, y + label_h))
            draw.text((x + 2, y + 2), label[: max(4, col_w[c] // 7)], fill=(0, 0, 0))
            x += col_w[c] + 2
        y += thumb_height + label_h + 2
    from ..io import write_image

    write_image(out, np.asarray(grid))
    return out


def bar_charts(table: Mapping, out: Path, title: str) -> Path | None:
    """One bar per method for each metric (matplotlib, the ``plot`` extra); None if unavailable."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    ms = table["metrics"]
    methods = table["methods"]
    ncols = 4
    nrows = (len(ms) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(4 * ncols, 0.25 * len(methods) * nrows + 1.5 * nrows),
                             squeeze=False)
    for ax, m in zip(axes.flat, ms):
        vals = [table["mean"][n][m] for n in methods]
        colors = ["#c0392b" if table["rank"][n][m] == 1 else "#2e86c1" if table["rank"][n][m] == 2 else "#aab7b8"
                  for n in methods]
        ax.barh(range(len(methods)), vals, color=colors)
        ax.set_yticks(range(len(methods)))
        ax.set_yticklabels(methods, fontsize=7)
        ax.invert_yaxis()
        ax.set_title(f"{m} ({'higher' if table['higher_is_better'][m] else 'lower'} is better)", fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
    for ax in list(axes.flat)[len(ms):]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        atomic_write(out, lambda fh: fig.savefig(fh, format="png", dpi=90))
    finally:
        plt.close(fig)
    return out
