"""Edge-aware upsampling of a stylized working copy back to the photo's full resolution.

A guided upsampler after the fast guided filter (He & Sun 2015, "Fast Guided Filter"; the
upsampler of Wu et al. 2018, "Fast End-to-End Trainable Guided Filter"). At the working
resolution, the stylized result ``p`` is fitted in every ``(2r+1)^2`` window as a linear function
of the photo's luminance ``I``, ``p ~ a * I + b`` (per colour channel, ridge ``eps``); the gains
``a``, box-averaged, vary slowly. Unlike the guided filter, the offset is not box-averaged too:
``b = box_k(p) - a * box_k(I)`` with a small ``k``, so the result at the working resolution is the
network's own output (lightly smoothed), not a blurred version of it. Both are upsampled
bilinearly and applied to the full-resolution luminance, ``out = a * I_full + b``: the photo's
detail finer than the working copy comes back at the local gain ``a`` (sharp at 100% zoom),
colours and brush strokes come from the network. Full-resolution work is a bilinear lookup and a
multiply-add per pixel, done in bands of rows so memory stays bounded.

The defaults were chosen on a 12 MP photo by VGG losses at 100% crops and at 512 px and by eye
(docs/design.md, "The working resolution"): a wide fit (``r = 8``) gives gains that hold across
a textured region, where the guided filter's ``r = 2`` windows see too little variance in the
working copy and wash fine texture out.
"""
import cv2
import numpy as np

__all__ = ['DEFAULT_RADIUS', 'DEFAULT_KEEP_RADIUS', 'DEFAULT_EPS', 'guided_upsample']

#: Radius of the windows the gains are fitted in, in working-resolution pixels.
DEFAULT_RADIUS = 8
#: Radius of the smoothing of the network's output in the offsets (0: none; the guided filter's
#: offsets would be ``radius`` smoothed twice).
DEFAULT_KEEP_RADIUS = 1
#: Ridge of the local linear fit, in (luminance in [0, 1]) squared: larger smooths more.
DEFAULT_EPS = 1e-4
_BAND_ROWS = 256


def _box(x, radius):
    return cv2.boxFilter(x, -1, (2 * radius + 1, 2 * radius + 1), normalize=True,
                         borderType=cv2.BORDER_REFLECT)


def guided_upsample(result, guide_low, guide_full, *, radius=DEFAULT_RADIUS, keep_radius=DEFAULT_KEEP_RADIUS,
                    eps=DEFAULT_EPS):
    """Bring ``result`` (h x w x 3, 0-255) to the size of ``guide_full`` (H x W luminance, uint8).

    ``guide_low`` is the luminance (h x w, uint8) of the image the network stylized, so the fit
    compares like with like. Returns H x W x 3 float32 in [0, 255].
    """
    h, w = result.shape[:2]
    big_h, big_w = guide_full.shape[:2]
    if guide_low.shape[:2] != (h, w):
        raise ValueError(f'guide_low is {guide_low.shape[:2]}, result is {(h, w)}')
    p = np.asarray(result, np.float32)
    g = guide_low.astype(np.float32) * (1.0 / 255.0)
    mean_g = _box(g, radius)
    var_g = _box(g * g, radius) - mean_g * mean_g
    mean_p = _box(p, radius)
    cov = _box(p * g[:, :, None], radius) - mean_g[:, :, None] * mean_p
    a = _box(cov / (var_g[:, :, None] + eps), radius)
    if keep_radius:
        p, g = _box(p, keep_radius), _box(g, keep_radius)
    b = p - a * g[:, :, None]
    a *= 1.0 / 255.0  # applied to the uint8 guide below
    out = np.empty((big_h, big_w, 3), np.float32)
    # bilinear with pixel centres aligned (as cv2.resize), one band of rows at a time: output
    # pixel (x, y) reads the coefficients at ((x + 0.5) * w / W - 0.5, (y + 0.5) * h / H - 0.5)
    sx, sy = w / big_w, h / big_h
    for top in range(0, big_h, _BAND_ROWS):
        rows = min(_BAND_ROWS, big_h - top)
        to_low = np.float32([[sx, 0, 0.5 * sx - 0.5], [0, sy, (top + 0.5) * sy - 0.5]])
        a_band, b_band = (cv2.warpAffine(c, to_low, (big_w, rows), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                         borderMode=cv2.BORDER_REPLICATE) for c in (a, b))
        band = out[top:top + rows]
        np.multiply(a_band, guide_full[top:top + rows, :, None], out=band)
        band += b_band
    return np.clip(out, 0.0, 255.0, out=out)
