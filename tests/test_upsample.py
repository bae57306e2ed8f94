"""The edge-aware upsampler (mxstyle.runtime.upsample) against plain bilinear upsampling."""
import cv2
import numpy as np
import pytest

from mxstyle.color import luminance_u8
from mxstyle.runtime.upsample import guided_upsample


def _edge_width(row, low, high):
    """Pixels over which ``row`` climbs from 10% to 90% of the way from ``low`` to ``high``."""
    t = (np.asarray(row, np.float64) - low) / (high - low)
    return int(np.sum((t > 0.1) & (t < 0.9)))


@pytest.mark.parametrize("factor", [4, 8])
def test_a_step_edge_stays_sharp_where_bilinear_blurs_it(factor):
    h, w = 64, 96
    big = np.zeros((h * factor, w * factor, 3), np.uint8)
    big[:, w * factor // 2 + 3:] = 220          # a vertical step, not on a low-resolution pixel border
    small = cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA)
    styled = small.astype(np.float32) * 0.5 + np.float32([40, 60, 20])  # a "stylization": 40..150
    out = guided_upsample(styled, luminance_u8(small), luminance_u8(big))
    bilinear = cv2.resize(styled, (w * factor, h * factor), interpolation=cv2.INTER_LINEAR)
    row = h * factor // 2
    for c, (low, high) in enumerate([(40, 150), (60, 170), (20, 130)]):
        sharp, blurred = _edge_width(out[row, :, c], low, high), _edge_width(bilinear[row, :, c], low, high)
        assert sharp <= 2, (c, sharp)
        assert blurred >= factor // 2 + 1, (c, blurred)
    # away from the edge the colours are the stylization's
    np.testing.assert_allclose(out[row, :10], np.broadcast_to([40, 60, 20], (10, 3)), atol=1.5)
    np.testing.assert_allclose(out[row, -10:], np.broadcast_to([150, 170, 130], (10, 3)), atol=1.5)


def test_texture_of_the_working_copy_survives():
    """Brush strokes of the network's output (not in the photo) stay in the upsampled result."""
    rng = np.random.RandomState(0)
    small_photo = np.full((48, 64, 3), 128, np.uint8) + rng.randint(-20, 20, (48, 64, 1)).astype(np.uint8)
    big_photo = cv2.resize(small_photo, (256, 192), interpolation=cv2.INTER_LINEAR)
    strokes = 60 * np.sin(np.arange(64) / 1.5)[None, :, None] + 120  # stripes 3 px wide at low res
    styled = np.broadcast_to(strokes, (48, 64, 3)).astype(np.float32)
    out = guided_upsample(styled, luminance_u8(small_photo), luminance_u8(big_photo))
    back = cv2.resize(out, (64, 48), interpolation=cv2.INTER_AREA)
    assert np.corrcoef(back[..., 0].ravel(), styled[..., 0].ravel())[0, 1] > 0.9


def test_sizes_and_range():
    styled = np.random.RandomState(1).uniform(0, 255, (7, 5, 3)).astype(np.float32)
    guide_low = np.random.RandomState(2).randint(0, 256, (7, 5)).astype(np.uint8)
    for size in [(7, 5), (29, 17), (700, 3), (1, 1)]:
        guide = cv2.resize(guide_low, size[::-1], interpolation=cv2.INTER_LINEAR)
        out = guided_upsample(styled, guide_low, guide)
        assert out.shape == size + (3,) and out.dtype == np.float32
        assert out.min() >= 0 and out.max() <= 255
    with pytest.raises(ValueError):
        guided_upsample(styled, guide_low[:3], guide_low)


def test_texture_finer_than_the_working_copy_comes_back_at_the_stylizations_gain():
    """A photo whose texture is finer than the working copy's pixels, and a stylization that maps
    luminance linearly (gain 0.6): the full-resolution detail comes back at nearly that gain, and
    at the working resolution the result stays the network's output."""
    rng = np.random.RandomState(0)
    factor, h, w = 4, 48, 64
    y, x = np.mgrid[0:h * factor, 0:w * factor]
    texture = cv2.GaussianBlur(rng.uniform(-50, 50, (h * factor, w * factor)).astype(np.float32), (0, 0), 1.0)
    luma = np.clip(60 + 0.5 * x + 0.2 * y + texture, 0, 255).astype(np.uint8)
    big = np.repeat(luma[:, :, None], 3, axis=2)
    small = cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA)
    styled = small.astype(np.float32) * 0.6 + np.float32([50, 30, 70])
    out = guided_upsample(styled, luminance_u8(small), luminance_u8(big))
    detail = luma.astype(np.float32) - cv2.GaussianBlur(luma.astype(np.float32), (0, 0), 3.0)
    for c in range(3):
        got = out[..., c] - cv2.GaussianBlur(out[..., c], (0, 0), 3.0)
        inner = (slice(16, -16), slice(16, -16))
        gain = float(np.sum(got[inner] * detail[inner]) / np.sum(detail[inner] ** 2))
        assert 0.5 <= gain <= 0.65, (c, gain)
    back = cv2.resize(out, (w, h), interpolation=cv2.INTER_AREA)
    assert np.abs(back - styled)[4:-4, 4:-4].mean() < 2.0
