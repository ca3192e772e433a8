"""The NGF dense stage: a smooth residual across inverted contrast, left alone when there is none."""

from __future__ import annotations

import numpy as np
import pytest
import torch

cv2 = pytest.importorskip("cv2")

from ivfuse.registration import Registration, RegistrationParams, estimate  # noqa: E402
from ivfuse.registration.ngf import NGFParams, ngf_distance, ngf_field  # noqa: E402

FAST = NGFParams(levels=(2, 1), iterations=(60, 25), spacing=16)


def _texture(seed: int, size=(112, 144)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.zeros(size, np.float32)
    for sigma, amp in ((10, 1.0), (3, 0.6), (1.2, 0.2)):
        img += amp * cv2.GaussianBlur(rng.standard_normal(size).astype(np.float32), (0, 0), sigma) * sigma
    img -= img.min()
    return (img / img.max()).astype(np.float32)


def _bend(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return 2.5 * np.sin(xs / 40.0) * np.cos(ys / 35.0), 2.0 * np.cos(xs / 30.0 + 0.5)


def _inner(shape, margin=16) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[margin:-margin, margin:-margin] = True
    return m


def test_distance_is_zero_for_the_same_edges_and_ignores_inverted_contrast():
    img = torch.from_numpy(_texture(0))[None, None]
    mask = torch.ones_like(img)
    same = float(ngf_distance(img, img, mask, 1e-3, 1e-3))
    inverted = float(ngf_distance(img, 1 - img, mask, 1e-3, 1e-3))
    other = float(ngf_distance(img, torch.from_numpy(_texture(1))[None, None], mask, 1e-3, 1e-3))
    assert same < 0.02 and inverted == pytest.approx(same, abs=1e-6)
    assert other > 0.3


def test_recovers_a_smooth_field_across_inverted_contrast():
    fixed = _texture(2)
    h, w = fixed.shape
    dx, dy = _bend(h, w)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    # Fixed pixel x shows the moving image at x + d(x): the moving image is the other modality, bent.
    moving = 1.0 - cv2.remap(fixed, xs - dx, ys - dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    reg = Registration(np.eye(3), None, fixed.shape, moving_shape=moving.shape)
    flow, info = ngf_field(fixed, moving, reg, FAST, name="bend")
    assert flow is not None and flow.shape == (h, w, 2) and flow.dtype == np.float32
    inner = _inner(fixed.shape)
    err_before = np.hypot(dx, dy)[inner].mean()
    err_after = np.hypot(flow[..., 0] - dx, flow[..., 1] - dy)[inner].mean()
    assert err_after < 0.45 * err_before, (err_before, err_after)
    assert info["ngf_after"] < info["ngf_before"]


def test_aligned_pair_gets_no_field_or_a_negligible_one():
    fixed = _texture(3)
    reg = Registration(np.eye(3), None, fixed.shape, moving_shape=fixed.shape)
    flow, _ = ngf_field(fixed, 1.0 - fixed, reg, FAST, name="still")
    if flow is not None:
        assert np.hypot(flow[..., 0], flow[..., 1])[_inner(fixed.shape)].mean() < 0.1


def test_estimate_uses_the_ngf_stage_and_reports_it():
    fixed = _texture(4, (160, 208))
    h, w = fixed.shape
    dx, dy = _bend(h, w)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    moving = 1.0 - cv2.remap(fixed, xs - dx, ys - dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    reg = estimate(fixed, moving, method="both", name="b", params=RegistrationParams(ngf=FAST))
    assert reg.extra["dense"]["stage"] == "ngf"
    out, valid = reg.apply(1.0 - moving)
    inner = valid & _inner(fixed.shape)
    assert np.abs(out - fixed)[inner].mean() < 0.5 * np.abs((1.0 - moving) - fixed)[inner].mean()
    dis = estimate(fixed, moving, method="both", name="b", params=RegistrationParams(dense="dis"))
    assert "dense" not in dis.extra and dis.flow is not None


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="levels"):
        NGFParams(levels=(2, 1), iterations=(10,))
    fixed = _texture(5)
    with pytest.raises(ValueError, match="dense stage 'x'"):
        estimate(fixed, fixed, method="flow", params=RegistrationParams(dense="x"))


def test_a_field_beyond_max_shift_is_dropped_and_the_global_transform_stands():
    fixed = _texture(6)
    h, w = fixed.shape
    dx, dy = _bend(h, w)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    moving = cv2.remap(fixed, xs - dx, ys - dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    reg = Registration(np.eye(3), None, fixed.shape, moving_shape=moving.shape)
    tight = NGFParams(levels=(2, 1), iterations=(60, 25), spacing=16, max_shift=0.5)
    flow, info = ngf_field(fixed, moving, reg, tight, name="tight")
    assert flow is None and "limit 0.5" in info["dropped"] and info["max_shift_px"] > 0.5
