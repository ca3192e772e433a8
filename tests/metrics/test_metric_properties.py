"""Properties that hold by definition, checked on small synthetic images."""

from __future__ import annotations

import math

import numpy as np
import pytest

import ivfuse.metrics as M

CONVENTIONS = ["vifb", "cddfuse", "tang"]


def _f(img) -> np.ndarray:
    return np.asarray(img, dtype=np.float64)


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_entropy_of_constant_image_is_zero(convention):
    assert M.entropy(np.full((9, 13), 77.0), convention=convention) == 0.0


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_entropy_of_uniform_levels(convention):
    # 16 levels, each on the same number of pixels: exactly 4 bits.
    img = np.repeat(np.arange(16, dtype=np.float64) * 16, 5).reshape(8, 10)
    assert M.entropy(img, convention=convention) == pytest.approx(4.0, abs=1e-12)


def test_entropy_binning_differs_only_off_integers():
    img = np.array([[0.5, 1.5, 2.5, 3.5]])
    # floor puts the four values in four bins; round-half-even merges 0.5->0 ... 3.5->4 into {0, 2, 4}.
    assert M.entropy(img, convention="vifb") == pytest.approx(2.0)
    assert M.entropy(img, convention="cddfuse") == pytest.approx(1.5)
    # MATLAB rounds half away from zero: 1, 2, 3, 4 are four bins again.
    assert M.entropy(img, convention="tang") == pytest.approx(2.0)


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_ssim_of_identical_images_is_maximal(triple, convention):
    fused, ir, vis = map(_f, triple)
    top = 1.0 if convention == "tang" else 2.0
    # The Gaussian-window SSIM filters in float32 (docs/metrics.md, Speed): the image's own
    # moments and its cross moments with itself come from different BLAS products, whose
    # rounding depends on the CPU's kernels (6e-11 seen on one AMD EPYC, 0 on another).
    assert M.ssim(fused, ir=fused, vis=fused, convention=convention) == pytest.approx(top, abs=1e-6)
    assert M.ssim(fused, ir=ir, vis=vis, convention=convention) < top - 0.05


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_symmetric_metrics_ignore_source_order(triple, convention):
    fused, ir, vis = triple
    names = ["MI", "SSIM", "Qabf", "VIF", "CC", "SCD", "PSNR", "MSE", "RMSE", "CE", "Nabf", "Qcb", "Qcv"]
    forward = M.evaluate(fused, ir, vis, metrics=names, convention=convention)
    swapped = M.evaluate(fused, vis, ir, metrics=names, convention=convention)
    for name in names:
        # SSIM filters in float32: a source's products land in another column of the BLAS
        # product when the sources swap, which can change their rounding on some CPUs.
        rel = 1e-6 if name == "SSIM" else 1e-12
        assert swapped[name] == pytest.approx(forward[name], rel=rel), name


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_mutual_information_with_itself_is_entropy(triple, convention):
    img = _f(triple[1])
    assert img.max() < 254  # so Tang's merged top bins play no role
    mi = M.mutual_information_pair(img, source=img, convention=convention)
    if convention == "vifb":
        lo, hi = img.min(), img.max()
        levels = np.floor((img - lo) / (hi - lo) * 255 + 0.5)
        expected = M.entropy(levels) * math.log(2)  # nats
    elif convention == "cddfuse":
        expected = M.entropy(img) * math.log(2)  # nats
    else:
        expected = M.entropy(img)  # bits
    assert mi == pytest.approx(expected, rel=1e-12)


def test_mutual_information_of_independent_images_is_small(rng):
    a = rng.integers(0, 4, size=(200, 200)).astype(np.float64)
    b = rng.integers(0, 4, size=(200, 200)).astype(np.float64)
    assert M.mutual_information_pair(b, source=a, convention="cddfuse") < 0.01
    assert M.mutual_information_pair(a, source=a, convention="cddfuse") == pytest.approx(math.log(4), rel=1e-3)


def test_tang_merges_levels_254_and_255_in_the_joint_histogram_only():
    img = np.array([[254.0, 255.0] * 8])
    # Marginal entropies are 1 bit each, the joint histogram has a single bin: MI = 2 bits.
    assert M.mutual_information_pair(img, source=img, convention="tang") == pytest.approx(2.0)
    assert M.mutual_information_pair(img, source=img, convention="cddfuse") == pytest.approx(math.log(2))


def test_qabf_of_identical_images_is_the_product_of_the_sigmoid_ceilings(triple):
    img = _f(triple[0])
    # G = gF where gA == gF: at 0..255 * 255 (vifb) every non-zero strength saturates Q_g at Tg;
    # the orientation term is A = 1, so Q = Tg * Ta / (1 + exp(ka (1 - Da))) wherever there is an edge.
    expected = 0.9994 * 0.9879 / (1.0 + math.exp(-22.0 * (1.0 - 0.8)))
    assert M.qabf(img, ir=img, vis=img, convention="vifb") == pytest.approx(expected, rel=1e-12)


def test_qabf_rewards_keeping_edges(triple):
    fused, ir, vis = map(_f, triple)
    blurred = (fused[:-2, :-2] + fused[1:-1, 1:-1] + fused[2:, 2:]) / 3.0
    crop = (slice(1, -1), slice(1, -1))
    assert M.qabf(fused[crop], ir=ir[crop], vis=vis[crop]) > M.qabf(blurred, ir=ir[crop], vis=vis[crop])


@pytest.mark.parametrize("shift", [-30.0, 0.5, 17.0])
def test_sd_is_invariant_to_a_constant_shift(triple, shift):
    img = _f(triple[0])
    assert M.standard_deviation(img + shift) == pytest.approx(M.standard_deviation(img), rel=1e-12)
    assert M.standard_deviation(np.full((5, 5), 9.0)) == 0.0


@pytest.mark.parametrize("convention", ["cddfuse", "tang"])
def test_sf_and_ag_are_invariant_to_a_constant_shift(triple, convention):
    img = _f(triple[0])
    assert M.spatial_frequency(img + 11, convention=convention) == pytest.approx(
        M.spatial_frequency(img, convention=convention), rel=1e-12
    )
    assert M.average_gradient(img + 11, convention=convention) == pytest.approx(
        M.average_gradient(img, convention=convention), rel=1e-12
    )


def test_sf_and_ag_of_a_ramp():
    ramp = np.tile(np.arange(10, dtype=np.float64) * 3.0, (6, 1))  # dx = 3, dy = 0
    assert M.spatial_frequency(ramp, convention="cddfuse") == pytest.approx(3.0)
    # VIFB divides the 6 * 9 horizontal differences by all 6 * 10 pixels.
    assert M.spatial_frequency(ramp, convention="vifb") == pytest.approx(math.sqrt(9.0 * 54 / 60))
    # Gradient 3 everywhere: per pixel sqrt(9 / 2); cddfuse averages, vifb/tang divide by (r-1)(c-1).
    assert M.average_gradient(ramp, convention="cddfuse") == pytest.approx(3.0 / math.sqrt(2))
    assert M.average_gradient(ramp, convention="tang") == pytest.approx(3.0 / math.sqrt(2) * 60 / 45)


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_errors_vanish_when_fused_equals_both_sources(triple, convention):
    img = _f(triple[0])
    assert M.mse(img, ir=img, vis=img, convention=convention) == 0.0
    assert M.rmse(img, ir=img, vis=img, convention=convention) == 0.0
    assert M.psnr(img, ir=img, vis=img, convention=convention) == math.inf


def test_mse_scale_and_psnr_formulas(triple):
    img = _f(triple[1])
    fused = img + 4.0  # error 4 against both sources
    assert M.mse(fused, ir=img, vis=img, convention="cddfuse") == pytest.approx(16.0)
    assert M.mse(fused, ir=img, vis=img, convention="tang") == pytest.approx(16.0 / 255**2)
    assert M.rmse(fused, ir=img, vis=img, convention="cddfuse") == pytest.approx(4.0)
    assert M.psnr(fused, ir=img, vis=img, convention="cddfuse") == pytest.approx(
        10 * math.log10(fused.max() ** 2 / 16.0)
    )
    assert M.psnr(fused, ir=img, vis=img, convention="tang") == pytest.approx(20 * math.log10(255.0 / (4.0 / 255)))
    vifb_rmse = math.sqrt(16.0 * img.size) / img.size
    assert M.rmse(fused, ir=img, vis=img, convention="vifb") == pytest.approx(vifb_rmse)
    assert M.psnr(fused, ir=img, vis=img, convention="vifb") == pytest.approx(
        20 * math.log10(255.0 / math.sqrt(vifb_rmse))
    )


def test_correlation_metrics(triple):
    fused, ir, vis = map(_f, triple)
    assert M.correlation_coefficient(fused, ir=fused, vis=fused) == pytest.approx(1.0)
    assert M.correlation_coefficient(255 - fused, ir=fused, vis=fused) == pytest.approx(-1.0)
    # SCD: F - B = A exactly when F = A + B, so each correlation is 1.
    assert M.scd(vis + ir, ir=ir, vis=vis) == pytest.approx(2.0)
    assert math.isnan(M.correlation(np.ones((4, 4)), fused[:4, :4]))


def test_cross_entropy_is_zero_for_equal_histograms_and_positive_otherwise(triple):
    fused, ir, vis = map(_f, triple)
    assert M.cross_entropy(fused, ir=fused, vis=fused) == 0.0
    assert M.cross_entropy(np.flipud(fused), ir=fused, vis=fused) == 0.0  # same histogram, other layout
    # VIFB skips bins empty in either histogram, so CE can go negative; when the fused histogram
    # covers every level it is a Kullback-Leibler divergence, hence positive for other histograms.
    covering = fused.copy()
    covering.ravel()[:256] = np.arange(256)
    assert M.cross_entropy(covering, ir=ir, vis=vis) > 0.0


def test_vif_of_identical_images(triple):
    img = _f(triple[0])
    assert M.vifp(img, source=img) == pytest.approx(1.0, abs=1e-9)
    assert M.vif(img, ir=img, vis=img) == pytest.approx(2.0, abs=1e-9)
    noisy = img + np.random.default_rng(0).normal(0, 20, img.shape)
    assert M.vifp(noisy, source=img) < 0.8


def test_vif_of_flat_reference_is_nan_except_under_cddfuse():
    flat = np.full((48, 48), 100.0)
    other = np.arange(48 * 48, dtype=np.float64).reshape(48, 48) % 97
    assert math.isnan(M.vif(other, ir=flat, vis=flat, convention="vifb"))
    assert M.vif(other, ir=flat, vis=flat, convention="cddfuse") == 2.0


def test_nabf_is_zero_without_new_edges_and_positive_with_them(triple):
    fused = _f(triple[0])
    assert M.nabf(fused, ir=fused, vis=fused) == 0.0
    speckled = fused.copy()
    speckled[::4, ::4] = 255.0 - speckled[::4, ::4]
    assert M.nabf(speckled, ir=fused, vis=fused) > 0.0


def test_qcv_is_zero_for_perfect_fusion_and_qcb_is_one(triple):
    img = _f(triple[0])
    assert M.qcv(img, ir=img, vis=img) == 0.0
    assert M.qcb(img, ir=img, vis=img) == pytest.approx(1.0, abs=1e-12)
    fused, ir, vis = map(_f, triple)
    assert M.qcv(fused, ir=ir, vis=vis) > 0.0
    assert 0.0 < M.qcb(fused, ir=ir, vis=vis) < 1.0


def test_edge_intensity_of_a_ramp():
    ramp = np.tile(np.arange(10, dtype=np.float64), (6, 1))
    # Sobel x of a unit ramp is 8 inside; replicate padding halves it on the first and last column.
    expected = (8.0 * 8 + 4.0 * 2) / 10
    assert M.edge_intensity(ramp) == pytest.approx(expected)


def test_vifb_and_cddfuse_mi_differ_only_off_8_bit_levels(rng):
    a = rng.integers(0, 256, size=(40, 40)).astype(np.float64)
    f = np.clip(a + rng.integers(-20, 21, size=a.shape), 0, 255)
    # On 8-bit images VIFB's min-max normalisation only relabels levels: same MI as raw labels.
    assert M.mutual_information_pair(f, source=a, convention="vifb") == pytest.approx(
        M.mutual_information_pair(f, source=a, convention="cddfuse"), rel=1e-12
    )
    # With 1600 distinct float values, VIFB merges them into 256 levels, CDDFuse keeps them apart.
    x = rng.uniform(0, 255, size=(40, 40))
    assert (
        M.mutual_information_pair(f, source=x, convention="vifb")
        < M.mutual_information_pair(f, source=x, convention="cddfuse") - 0.5
    )
