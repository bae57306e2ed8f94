"""Color helpers: YIQ luminance and chroma, for transferring style to luminance only.

Gatys et al. 2016 ("Preserving Color in Neural Artistic Style Transfer"): style the
luminance, keep the photo's chroma (I and Q channels of YIQ). Images are HxWx3 float32 RGB
in [0, 255].
"""
import cv2
import numpy as np

_RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114],
                        [0.595716, -0.274453, -0.321263],
                        [0.211456, -0.522591, 0.311135]], dtype=np.float32)
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ).astype(np.float32)


def rgb_to_yiq(image):
    return image @ _RGB_TO_YIQ.T


def yiq_to_rgb(image):
    return image @ _YIQ_TO_RGB.T


def luminance(image):
    """The Y channel, as an HxW array."""
    return rgb_to_yiq(image)[..., 0]


def gray3(y):
    """A luminance channel replicated into a 3-channel image (what VGG sees when styling Y)."""
    return np.repeat(np.asarray(y, dtype=np.float32)[..., None], 3, axis=2)


def match_luminance(style_y, content_y):
    """Shift and scale the style's luminance to the mean and std of the content's."""
    scale = content_y.std() / max(float(style_y.std()), 1e-6)
    return (style_y - style_y.mean()) * scale + content_y.mean()


def keep_colors(stylized, content):
    """Luminance of ``stylized`` with the chroma of ``content`` (resized to match first)."""
    if stylized.shape[:2] != content.shape[:2]:
        import cv2

        content = cv2.resize(content, (stylized.shape[1], stylized.shape[0]), interpolation=cv2.INTER_AREA)
    yiq = rgb_to_yiq(content)
    yiq[..., 0] = luminance(stylized)
    return np.clip(yiq_to_rgb(yiq), 0, 255).astype(np.float32)


def luminance_u8(image):
    """The luminance (the same BT.601 weights) of an HxWx3 RGB image as HxW uint8."""
    pixels = image if image.dtype == np.uint8 else np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_RGB2GRAY)
