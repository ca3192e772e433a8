"""A synthetic infrared/visible pair that shows what fusion is for.

The visible image is a coloured, textured scene in which a person-sized warm target stands in
shadow with exactly the luminance of its surroundings, so it cannot be seen. The infrared image
shows the target bright against a smooth background and has none of the visible texture. A
good fusion keeps both.
"""

from __future__ import annotations

import numpy as np

__all__ = ["make_demo_pair"]


def make_demo_pair(height: int = 240, width: int = 320, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Make the demo pair.

    Returns:
        ir (H, W) uint8, vis (H, W, 3) uint8, and the target mask (H, W) bool.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    horizon = int(height * 0.45)
    sky = yy < horizon

    # Visible: sky gradient, striped and noisy ground, two buildings with windows, a dark shadow band.
    vis = np.zeros((height, width, 3))
    t = yy / max(1, horizon)
    vis[..., 0] = np.where(sky, 0.45 + 0.25 * t, 0.35)
    vis[..., 1] = np.where(sky, 0.60 + 0.20 * t, 0.45)
    vis[..., 2] = np.where(sky, 0.90, 0.25)
    ground_tex = (0.08 * np.sin(2 * np.pi * xx / 9.0) * np.sin(2 * np.pi * yy / 7.0)
                  + 0.04 * rng.standard_normal((height, width)))
    vis += np.where(sky, 0.0, ground_tex)[..., None]
    buildings = [(int(width * 0.08), int(width * 0.30), int(height * 0.18)),
                 (int(width * 0.62), int(width * 0.90), int(height * 0.10))]
    for x0, x1, top in buildings:
        region = (xx >= x0) & (xx < x1) & (yy >= top) & (yy < horizon + 5)
        vis[region] = (0.55, 0.50, 0.48)
        windows = (region & ((xx - x0) % 12 >= 4) & ((xx - x0) % 12 < 9)
                   & ((yy - top) % 14 >= 4) & ((yy - top) % 14 < 10))
        vis[windows] = (0.25, 0.28, 0.35)
    shadow = (xx >= width * 0.38) & (xx < width * 0.58) & (yy >= height * 0.50) & (yy < height * 0.92)
    vis[shadow] = (0.16, 0.16, 0.17)
    cx, cy = width * 0.48, height * 0.70
    target = (((xx - cx) / (width * 0.035)) ** 2 + ((yy - cy) / (height * 0.14)) ** 2) <= 1.0
    target |= ((xx - cx) ** 2 + (yy - (cy - height * 0.17)) ** 2) <= (width * 0.022) ** 2  # head
    # The target wears clothes of the shadow's luminance: invisible in the visible image.
    vis[target] = (0.17, 0.155, 0.18)
    vis = np.clip(vis, 0, 1)

    # Infrared: smooth temperatures only; buildings lukewarm, windows warm at night, target hot.
    ir = np.where(sky, 0.10 + 0.10 * t, 0.30 + 0.15 * (yy - horizon) / max(1, height - horizon))
    for x0, x1, top in buildings:
        region = (xx >= x0) & (xx < x1) & (yy >= top) & (yy < horizon + 5)
        ir = np.where(region, 0.42, ir)
    ir = np.where(target, 0.92, ir)
    ir = np.clip(ir + 0.01 * rng.standard_normal((height, width)), 0, 1)
    return (np.round(ir * 255).astype(np.uint8), np.round(vis * 255).astype(np.uint8), target)
