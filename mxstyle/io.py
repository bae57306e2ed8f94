"""Reading and writing images, and converting them to and from network tensors.

Every image inside mxstyle is an ``H x W x 3`` float32 numpy array, RGB order, values in
[0, 255]. :func:`read_image` turns any supported input into that form; :func:`write_image`
and :func:`encode_image` turn it back into a file. Decoding is done by OpenCV
(``cv2.imdecode``: JPEG, PNG, WebP, BMP, TIFF), and by Pillow for what OpenCV cannot read:
GIF (the first frame), AVIF, HEIC/HEIF (phone cameras' format, with the optional
``pillow-heif`` package: ``pip install "mxstyle[heif]"``) and Pillow's other formats.

Around the decoders this module adds what they do not do for us:

* EXIF orientation. We decode with ``IMREAD_UNCHANGED`` (to keep alpha and 16-bit samples),
  which ignores EXIF, so the Orientation tag is parsed here and applied with numpy.
* A pixel limit checked from the file header *before* decoding, so that a small file
  announcing a huge image (a "decompression bomb") is refused without allocating it.
* Truncation checks: OpenCV may silently return a half-gray image for a cut JPEG.
* One clear :class:`~mxstyle.errors.ImageError` naming the source for every bad input, which
  tells a damaged file (a format we read, whose content is broken) from an unsupported one.
"""

from __future__ import annotations

import io as _bytes_io
import os
import re
import struct
import sys
from typing import NamedTuple, Optional, Tuple

import cv2
import numpy as np

from mxstyle.values import is_integer
from mxstyle.errors import ConfigError, ImageError
from mxstyle.files import write_bytes_atomic

__all__ = [
    "DEFAULT_MAX_PIXELS", "READ_EXTENSIONS", "SUPPORTED_FORMATS", "WRITE_EXTENSIONS", "read_image",
    "read_luminance", "read_file", "is_jpeg", "image_size", "max_side_size", "write_image", "encode_image",
    "to_tensor", "from_tensor", "resize_max_side", "resize",
]

#: Largest image (width * height) :func:`read_image` accepts unless told otherwise.
DEFAULT_MAX_PIXELS = 100_000_000

#: File extensions :func:`write_image` and :func:`encode_image` know how to write.
WRITE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")

#: File extensions taken for images when a folder is searched (training photos, batches).
READ_EXTENSIONS = WRITE_EXTENSIONS + (".gif", ".avif", ".heic", ".heif")

#: What :func:`read_image` reads, as said in its error messages.
SUPPORTED_FORMATS = ("JPEG, PNG, WebP, BMP, TIFF, GIF (first frame), AVIF, HEIC/HEIF (with the "
                     "pillow-heif package) and the other formats Pillow opens (PPM, TGA, ICO, ...)")

# Formats OpenCV does not decode (GIF only in some builds): straight to Pillow.
_PILLOW_FORMATS = ("GIF", "HEIF", "AVIF")


# --------------------------------------------------------------------------- reading

def read_image(src, *, max_pixels: Optional[int] = DEFAULT_MAX_PIXELS, max_side: Optional[int] = None,
               name: Optional[str] = None) -> np.ndarray:
    """Load an image as an ``H x W x 3`` float32 RGB array with values in [0, 255].

    ``src`` may be a file path (``str`` or ``os.PathLike``), the encoded file content
    (``bytes``, ``bytearray``, ``memoryview``), a numpy array (``H x W`` gray, ``H x W x 3``
    RGB or ``H x W x 4`` RGBA; uint8, uint16 or float in [0, 255]) or a ``PIL.Image``.
    Transparent pixels are composited on white, gray is replicated to three channels,
    16-bit samples are scaled to [0, 255] and the EXIF orientation is applied.

    ``max_side`` shrinks the image so its longer side is at most that many pixels (as
    :func:`resize_max_side`); a large JPEG is then decoded at 1/2, 1/4 or 1/8 scale by libjpeg
    first, which is several times faster than decoding every pixel. Images with more than
    ``max_pixels`` pixels are refused (``None`` disables the check). ``name`` names ``bytes`` in
    messages. Raises :class:`ImageError` naming the source for anything that is not a usable image.
    """
    if max_side is not None and (not is_integer(max_side) or max_side < 1):
        raise ConfigError(f"max_side must be a positive integer or None, got {max_side!r}")
    encoded = _encoded(src, name)
    if encoded is not None:
        return _decode(*encoded, max_pixels, max_side=max_side)
    return _shrink(_read_other(src, max_pixels), max_side)


def read_luminance(src, *, max_pixels: Optional[int] = DEFAULT_MAX_PIXELS,
                   name: Optional[str] = None) -> np.ndarray:
    """The luminance of an image (:func:`mxstyle.color.luminance_u8`) as ``H x W`` uint8, with the
    orientation, limits and errors of :func:`read_image`. A JPEG is decoded straight to its luma
    channel, without the colour conversion."""
    encoded = _encoded(src, name)
    if encoded is not None:
        return _decode(*encoded, max_pixels, gray=True)
    from mxstyle.color import luminance_u8

    return luminance_u8(_read_other(src, max_pixels))


def _encoded(src, name):
    """``(file bytes, name for messages)`` for a path or bytes; None for other sources."""
    if isinstance(src, (str, os.PathLike)):
        return read_file(src), os.fspath(src)
    if isinstance(src, (bytes, bytearray, memoryview)):
        return bytes(src), name or "<bytes>"
    return None


def is_jpeg(data: bytes) -> bool:
    """True when ``data`` starts like a JPEG file (the format with reduced and luma-only decodes)."""
    return bytes(data[:3]) == b"\xff\xd8\xff"


def image_size(data: bytes) -> Optional[Tuple[int, int]]:
    """``(height, width)`` of encoded image ``data`` as :func:`read_image` would return it (EXIF
    orientation applied), read from the header without decoding; None when the header does
    not say (then decode to know)."""
    return _oriented_size(_probe(bytes(data)))


def _oriented_size(probe) -> Optional[Tuple[int, int]]:
    """``(height, width)`` of a probed image after its EXIF orientation (5-8 swap the sides)."""
    if probe.size is None:
        return None
    width, height = probe.size
    return (width, height) if probe.orientation in (5, 6, 7, 8) else (height, width)


def _read_other(src, max_pixels):
    """An array or a PIL image as :func:`read_image` gives it."""
    if isinstance(src, np.ndarray):
        _check_pixels(src.shape[1::-1] if src.ndim >= 2 else None, "<array>", max_pixels)
        return _normalize(src, "<array>", bgr=False)
    pil_image = sys.modules.get("PIL.Image")  # only a PIL image if PIL was already imported
    if pil_image is not None and isinstance(src, pil_image.Image):
        return _from_pil(src, max_pixels)
    raise ImageError(f"cannot read an image from a {type(src).__name__}; expected a path, "
                     "bytes, a numpy array or a PIL image")


def read_file(path) -> bytes:
    """The bytes of an image file, with :class:`ImageError` for a missing, empty or unreadable one."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ImageError(f"{path}: is a directory, not an image file")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except OSError as e:
        raise ImageError(f"{path}: cannot read file ({e.strerror or e})") from None
    if not data:
        raise ImageError(f"{path}: file is empty (0 bytes)")
    return data


_JPEG_REDUCED = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
                 8: cv2.IMREAD_REDUCED_COLOR_8}


def _decode(data: bytes, name: str, max_pixels: Optional[int], *, max_side: Optional[int] = None,
            gray: bool = False) -> np.ndarray:
    if not data:
        raise ImageError(f"{name}: no data (0 bytes)")
    probe = _probe(data)
    _check_pixels(probe.size, name, max_pixels)  # before decoding: refuse bombs cheaply
    if probe.complete is False:
        raise ImageError(f"{name}: truncated {probe.fmt} file (the end of the image is "
                         "missing); the file is incomplete or damaged")
    if probe.fmt == "JPEG" and probe.size is not None and (gray or max_side is not None):
        fast = _decode_jpeg_fast(data, probe, max_side, gray)
        if fast is not None:
            return fast
    image = _decode_full(data, name, probe, max_pixels)
    if gray:
        from mxstyle.color import luminance_u8

        return luminance_u8(image)
    return _shrink(image, max_side)


def _shrink(image: np.ndarray, max_side: Optional[int]) -> np.ndarray:
    """``image`` scaled down so its longer side is at most ``max_side`` (never up)."""
    if max_side is None or max(image.shape[:2]) <= max_side:
        return image
    return resize_max_side(image, max_side)


def _decode_jpeg_fast(data: bytes, probe, max_side: Optional[int], gray: bool):
    """A JPEG decoded to its luma channel, or at the smallest libjpeg scale (1/2, 1/4, 1/8)
    that is still at least ``max_side`` and then area-resized to it; None to fall back."""
    width, height = probe.size
    if gray:
        flags = cv2.IMREAD_GRAYSCALE
    elif max(width, height) <= max_side:
        return None  # nothing to shrink: the ordinary decode
    else:
        factors = [k for k in (8, 4, 2) if max(width, height) >= max_side * k]
        flags = _JPEG_REDUCED[factors[0]] if factors else cv2.IMREAD_COLOR
    try:
        decoded = cv2.imdecode(np.frombuffer(data, np.uint8), flags | cv2.IMREAD_IGNORE_ORIENTATION)
    except cv2.error:
        decoded = None
    if decoded is None:
        return None
    if gray:
        return _apply_orientation(decoded, probe.orientation)
    image = _apply_orientation(cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB), probe.orientation)
    size = max_side_size(*_oriented_size(probe), max_side)
    if image.shape[:2] == size:
        return image.astype(np.float32)
    return resize(image, size)  # from the reduced decode to the size the full image gives


def _decode_full(data: bytes, name: str, probe, max_pixels: Optional[int]) -> np.ndarray:
    decoded = None
    if probe.fmt not in _PILLOW_FORMATS:
        try:
            decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        except cv2.error:
            decoded = None
    if decoded is None:
        return _decode_with_pillow(data, name, probe.fmt, max_pixels)
    _check_pixels(decoded.shape[1::-1], name, max_pixels)  # formats without a parsed header
    if decoded.dtype.kind == "f":  # float image files (TIFF, EXR, HDR) hold values in [0, 1]
        decoded = decoded.astype(np.float32) * 255.0
    image = _normalize(decoded, name, bgr=True)
    # OpenCV's TIFF decoder already applies the orientation tag itself.
    return image if probe.fmt == "TIFF" else _apply_orientation(image, probe.orientation)


def _decode_with_pillow(data: bytes, name: str, fmt: Optional[str],
                        max_pixels: Optional[int]) -> np.ndarray:
    """Decode what OpenCV cannot; ``fmt`` is the format the header showed (None: unknown)."""
    from PIL import Image, UnidentifiedImageError

    if fmt == "HEIF" and not _heif_opener_registered():
        raise ImageError(f"{name}: HEIC/HEIF images need the optional pillow-heif package: "
                         'pip install "mxstyle[heif]" (or pip install pillow-heif)')
    try:
        im = Image.open(_bytes_io.BytesIO(data))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        if fmt is None:
            raise ImageError(f"{name}: not an image, or an unsupported format; supported: "
                             f"{SUPPORTED_FORMATS}") from None
        raise ImageError(f"{name}: cannot decode this {fmt} file; it is damaged or "
                         f"incomplete ({e})") from None
    _check_pixels(im.size, name, max_pixels)  # the header is read, the pixels are not yet
    try:
        im.load()  # the first frame of an animation
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as e:
        raise ImageError(f"{name}: cannot decode this {fmt or im.format} file; it is damaged "
                         f"or incomplete ({e})") from None
    im.filename = name  # for the messages of _from_pil
    return _from_pil(im, None)


def _heif_opener_registered() -> bool:
    """Make Pillow open HEIC/HEIF through pillow-heif, when it is installed."""
    try:
        import pillow_heif
    except ImportError:
        return False
    pillow_heif.register_heif_opener()  # idempotent
    return True


def _check_pixels(size, name: str, max_pixels: Optional[int]) -> None:
    """Refuse an image whose ``size`` (width, height) exceeds ``max_pixels``."""
    if size is None or max_pixels is None:
        return
    width, height = size
    if width * height > max_pixels:
        raise ImageError(
            f"{name}: image is {width}x{height} = {width * height:,} pixels, over the limit of "
            f"{max_pixels:,} (a guard against decompression bombs); pass a larger "
            "max_pixels= to read_image (or max_pixels=None) if you trust this file")


def _normalize(arr: np.ndarray, name: str, *, bgr: bool) -> np.ndarray:
    """Turn a decoded or user-given array into H x W x 3 float32 RGB in [0, 255]."""
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
        raise ImageError(f"{name}: unsupported image shape {arr.shape}; expected HxW (gray), "
                         "HxWx3 (RGB) or HxWx4 (RGBA)")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageError(f"{name}: image has no pixels (shape {arr.shape})")
    if arr.dtype not in (np.uint8, np.uint16) and arr.dtype.kind != "f":
        raise ImageError(f"{name}: unsupported pixel type {arr.dtype}; expected uint8, "
                         "uint16 or float with values in [0, 255]")
    if bgr and arr.ndim == 3:  # OpenCV gives BGR(A); cvtColor is the fastest way to reorder
        arr = cv2.cvtColor(arr, cv2.COLOR_BGR2RGB if arr.shape[2] == 3 else cv2.COLOR_BGRA2RGBA)
    img = arr.astype(np.float32)
    if arr.dtype == np.uint16:
        img /= 257.0  # 65535 / 257 == 255 exactly
    elif arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise ImageError(f"{name}: image contains NaN or infinite values")
        np.clip(img, 0.0, 255.0, out=img)
    if img.ndim == 2:
        return np.repeat(img[:, :, None], 3, axis=2)
    if img.shape[2] == 4:  # composite on a white background
        alpha = img[:, :, 3:] / 255.0
        img = img[:, :, :3] * alpha + 255.0 * (1.0 - alpha)
    return np.ascontiguousarray(img, dtype=np.float32)


def _from_pil(im, max_pixels: Optional[int]) -> np.ndarray:
    from PIL import Image, ImageOps

    name = getattr(im, "filename", None) or "<PIL image>"
    _check_pixels(im.size, name, max_pixels)  # im.size is known before pixels are loaded
    try:
        im = ImageOps.exif_transpose(im)  # a copy with the orientation applied, as for files
        if im.mode.startswith("I"):  # 16/32-bit integer gray: PIL's convert() would clip it
            arr = np.clip(np.asarray(im), 0, 65535).astype(np.uint16)
        elif im.mode in ("RGB", "RGBA", "L"):
            arr = np.asarray(im)
        else:  # palette, LA, CMYK, YCbCr, 1-bit...: let PIL convert, keeping transparency
            has_alpha = "A" in im.mode or "transparency" in im.info
            arr = np.asarray(im.convert("RGBA" if has_alpha else "RGB"))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        # e.g. OSError "image file is truncated" for a lazily opened, damaged file
        raise ImageError(f"{name}: cannot load PIL image ({e})") from None
    return _normalize(arr, name, bgr=False)


def _apply_orientation(img: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) so the image is shown the way it was taken."""
    if orientation == 2:
        img = img[:, ::-1]                  # mirror left-right
    elif orientation == 3:
        img = img[::-1, ::-1]               # rotate 180
    elif orientation == 4:
        img = img[::-1, :]                  # mirror top-bottom
    elif orientation == 5:
        img = img.swapaxes(0, 1)            # mirror along the top-left diagonal
    elif orientation == 6:
        img = np.rot90(img, k=-1)           # rotate 90 degrees clockwise
    elif orientation == 7:
        img = img[::-1, ::-1].swapaxes(0, 1)  # mirror along the other diagonal
    elif orientation == 8:
        img = np.rot90(img, k=1)            # rotate 90 degrees counter-clockwise
    return np.ascontiguousarray(img)


# ------------------------------------------------------------- header parsing (no decoding)

class _Probe(NamedTuple):
    fmt: Optional[str]                  # "JPEG", "PNG", ... or None if unrecognized
    size: Optional[Tuple[int, int]] = None  # (width, height) from the header, if found
    orientation: int = 1                # EXIF orientation, 1 = as stored
    complete: Optional[bool] = None     # False = surely truncated, None = not checked


def _probe(data: bytes) -> _Probe:
    """Read format, size, orientation and completeness from the file bytes."""
    try:
        if data[:3] == b"\xff\xd8\xff":
            return _probe_jpeg(data)
        if data[:8] == b"\x89PNG\r\n\x1a\n":
            return _probe_png(data)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _probe_webp(data)
        if data[:4] in (b"II*\0", b"MM\0*"):
            tags = _tiff_tags(data)
            size = (tags[256], tags[257]) if 256 in tags and 257 in tags else None
            return _Probe("TIFF", size, _valid_orientation(tags.get(274, 1)))
        if data[:2] == b"BM" and len(data) >= 26:
            if struct.unpack("<I", data[14:18])[0] == 12:  # old OS/2 header: 16-bit sizes
                w, h = struct.unpack("<hh", data[18:22])
            else:
                w, h = struct.unpack("<ii", data[18:26])
            return _Probe("BMP", (abs(w), abs(h)))  # negative height = stored top-down
        if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
            return _Probe("GIF", struct.unpack("<HH", data[6:10]))
        if data[4:8] == b"ftyp":  # ISO base media file: the brands say HEIF or AVIF
            brands = {data[i:i + 4] for i in range(8, min(len(data), 8 + struct.unpack(">I", data[:4])[0]), 4)}
            if brands & {b"avif", b"avis"}:
                return _Probe("AVIF")
            if brands & {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}:
                return _Probe("HEIF")
    except struct.error:  # header shorter than it claims: let the decoder have its say
        pass
    return _Probe(None)


# In JPEG entropy-coded data a 0xFF byte is followed by 0x00 (stuffing) or a restart
# marker 0xD0-0xD7; anything else is a real marker that ends the scan.
_JPEG_MARKER_IN_SCAN = re.compile(rb"\xff[^\x00\xd0-\xd7]")
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _probe_jpeg(data: bytes) -> _Probe:
    # Walk the marker segments (FF xx, 2-byte length, payload) up to the end-of-image
    # marker FFD9. Looking for FFD9 anywhere would be fooled by an EXIF thumbnail.
    size, orientation, pos, n = None, 1, 2, len(data)
    while pos + 2 <= n:
        if data[pos] != 0xFF:  # stray bytes between segments: skip to the next 0xFF
            pos = data.find(b"\xff", pos)
            if pos < 0:
                break
            continue
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:  # end of image
            return _Probe("JPEG", size, _valid_orientation(orientation), True)
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            pos += 2
            continue
        if pos + 4 > n:
            break
        seg_len = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        payload = data[pos + 4:pos + 2 + seg_len]
        if marker in _JPEG_SOF and size is None and len(payload) >= 5:
            h, w = struct.unpack(">HH", payload[1:5])
            size = (w, h)
        elif marker == 0xE1 and payload[:6] == b"Exif\0\0" and orientation == 1:
            orientation = _tiff_tags(payload[6:]).get(274, 1)
        pos += 2 + seg_len
        if marker == 0xDA:  # start of scan: skip the compressed data to the next marker
            m = _JPEG_MARKER_IN_SCAN.search(data, pos)
            if m is None:
                break
            pos = m.start()
    return _Probe("JPEG", size, _valid_orientation(orientation), False)


def _probe_png(data: bytes) -> _Probe:
    # Chunks: 4-byte length, 4-byte type, data, 4-byte CRC. A whole file ends with IEND.
    size, orientation, pos, n = None, 1, 8, len(data)
    while pos + 8 <= n:
        length, ctype = struct.unpack(">I4s", data[pos:pos + 8])
        end = pos + 12 + length
        if end > n:
            break
        if ctype == b"IHDR":
            size = struct.unpack(">II", data[pos + 8:pos + 16])
        elif ctype == b"eXIf":  # EXIF in PNG: a bare TIFF structure
            orientation = _tiff_tags(data[pos + 8:pos + 8 + length]).get(274, 1)
        elif ctype == b"IEND":
            return _Probe("PNG", size, _valid_orientation(orientation), True)
        pos = end
    return _Probe("PNG", size, _valid_orientation(orientation), False)


def _probe_webp(data: bytes) -> _Probe:
    # RIFF container: "RIFF", little-endian size, "WEBP", then chunks (fourcc, size, data).
    complete = len(data) >= 8 + struct.unpack("<I", data[4:8])[0]
    size, orientation, pos = None, 1, 12
    while pos + 8 <= len(data):
        fourcc, length = struct.unpack("<4sI", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + min(length, 64 * 1024)]  # headers are small
        if fourcc == b"VP8X" and len(body) >= 10:  # extended: 24-bit canvas size minus one
            size = (1 + int.from_bytes(body[4:7], "little"),
                    1 + int.from_bytes(body[7:10], "little"))
        elif fourcc == b"VP8 " and size is None and body[3:6] == b"\x9d\x01\x2a":  # lossy
            w, h = struct.unpack("<HH", body[6:10])
            size = (w & 0x3FFF, h & 0x3FFF)
        elif fourcc == b"VP8L" and size is None and body[:1] == b"\x2f":  # lossless
            bits = struct.unpack("<I", body[1:5])[0]
            size = ((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
        elif fourcc == b"EXIF":
            exif = data[pos + 8:pos + 8 + length]
            orientation = _tiff_tags(exif[6:] if exif[:6] == b"Exif\0\0" else exif).get(274, 1)
        pos += 8 + length + (length & 1)  # chunks are padded to an even size
    return _Probe("WebP", size, _valid_orientation(orientation), complete)


def _tiff_tags(buf: bytes, wanted=(256, 257, 274)) -> dict:
    """Single-valued SHORT/LONG tags of the first IFD of a TIFF structure (also EXIF's).

    Tags: 256 ImageWidth, 257 ImageLength, 274 Orientation. Returns {} if unreadable.
    """
    order = {b"II*\0": "<", b"MM\0*": ">"}.get(buf[:4])
    if order is None or len(buf) < 8:
        return {}
    ifd = struct.unpack(order + "I", buf[4:8])[0]
    if ifd + 2 > len(buf):
        return {}
    tags = {}
    for i in range(struct.unpack(order + "H", buf[ifd:ifd + 2])[0]):
        entry = buf[ifd + 2 + 12 * i:ifd + 14 + 12 * i]
        if len(entry) < 12:
            break
        tag, typ, count = struct.unpack(order + "HHI", entry[:8])
        if tag in wanted and count == 1 and typ in (3, 4):  # 3 = SHORT, 4 = LONG
            fmt, end = ("H", 10) if typ == 3 else ("I", 12)  # value sits left-aligned
            tags[tag] = struct.unpack(order + fmt, entry[8:end])[0]
    return tags


def _valid_orientation(value: int) -> int:
    return value if 1 <= value <= 8 else 1


# --------------------------------------------------------------------------- writing

def encode_image(image, ext: str = ".png", quality: int = 95) -> bytes:
    """Encode an ``H x W x 3`` RGB image (float or uint8, values in [0, 255]) to file bytes.

    ``ext`` picks the format (``".png"``, ``".jpg"``, ``".webp"``, ``".bmp"``, ``".tif"``...);
    ``quality`` (1-100) is used by JPEG and WebP. Values are clipped and rounded.
    """
    ext = _check_extension(ext, "encode_image")
    if not is_integer(quality) or not 1 <= quality <= 100:
        raise ConfigError(f"quality must be an integer from 1 to 100, got {quality!r}")
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageError(f"cannot write an image of shape {arr.shape}; expected HxWx3 RGB")
    if arr.dtype != np.uint8:
        if arr.dtype.kind not in "fiu":
            raise ImageError(f"cannot write pixels of type {arr.dtype}; expected uint8 or float")
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise ImageError("cannot write an image containing NaN or infinite values")
        arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    params = []
    if ext in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    elif ext == ".webp":
        params = [cv2.IMWRITE_WEBP_QUALITY, int(quality)]
    bgr = np.ascontiguousarray(arr[:, :, ::-1])
    try:
        ok, buf = cv2.imencode(ext, bgr, params)
    except cv2.error as e:  # e.g. WebP is limited to 16383 pixels a side
        raise ImageError(f"cannot encode a {arr.shape[1]}x{arr.shape[0]} image as {ext}: "
                         f"{str(e).strip().splitlines()[-1]}") from None
    if not ok:
        raise ImageError(f"cannot encode a {arr.shape[1]}x{arr.shape[0]} image as {ext}")
    return buf.tobytes()


def write_image(path, image, *, quality: int = 95) -> None:
    """Write an ``H x W x 3`` RGB image (float or uint8 in [0, 255]) to ``path``.

    The format comes from the extension (see :data:`WRITE_EXTENSIONS`); parent
    directories are created. The file is written to a temporary name in the same
    directory and then renamed, so a crash never leaves a half-written image.
    """
    path = os.fspath(path)
    ext = _check_extension(os.path.splitext(path)[1], path)
    data = encode_image(image, ext, quality)
    try:
        write_bytes_atomic(path, data)
    except OSError as e:
        raise ImageError(f"{path}: cannot write file ({e.strerror or e})") from None


def _check_extension(ext: str, where: str) -> str:
    """Normalize ``ext`` to ".xxx" lower case, or raise an error listing the valid ones."""
    ext = ext.lower()
    if ext and not ext.startswith("."):
        ext = "." + ext
    if ext not in WRITE_EXTENSIONS:
        what = f"extension {ext!r}" if ext else "no file extension"
        raise ImageError(f"{where}: cannot write an image with {what}; "
                         f"use one of {', '.join(WRITE_EXTENSIONS)}")
    return ext


# --------------------------------------------------------------- tensors and resizing

def to_tensor(img_hwc) -> np.ndarray:
    """``H x W x 3`` image -> ``1 x 3 x H x W`` float32 array (the network's layout)."""
    arr = np.asarray(img_hwc)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ImageError(f"to_tensor expects an HxWx3 image, got shape {arr.shape}")
    return np.ascontiguousarray(arr.transpose(2, 0, 1)[None], dtype=np.float32)


def from_tensor(t) -> np.ndarray:
    """``1 x 3 x H x W`` or ``3 x H x W`` tensor (numpy, or anything with ``.asnumpy()``
    such as an MXNet NDArray) -> ``H x W x 3`` float32 image. Values are not clipped."""
    arr = np.asarray(t.asnumpy() if hasattr(t, "asnumpy") else t)
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 3 or arr.shape[0] != 3:
        raise ImageError(f"from_tensor expects a 1x3xHxW or 3xHxW tensor, got shape {arr.shape}")
    return np.ascontiguousarray(arr.transpose(1, 2, 0), dtype=np.float32)


def resize_max_side(img: np.ndarray, max_side: Optional[int]) -> np.ndarray:
    """Scale ``img`` so its longer side is ``max_side`` pixels, keeping the aspect ratio.

    ``max_side=None`` returns ``img`` itself, unchanged.
    """
    if max_side is None:
        return img
    if not is_integer(max_side) or max_side < 1:
        raise ConfigError(f"max_side must be a positive integer or None, got {max_side!r}")
    return resize(img, max_side_size(*img.shape[:2], max_side))


def max_side_size(height: int, width: int, max_side: int) -> Tuple[int, int]:
    """``(height, width)`` scaled so the longer side is ``max_side``, keeping the aspect ratio."""
    scale = max_side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize(img: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """Resize ``img`` to ``size = (height, width)``; returns float32.

    Shrinking uses area averaging (no aliasing); enlarging uses bicubic interpolation,
    whose overshoot is clipped back to [0, 255].
    """
    h, w = (int(v) for v in size)
    if h < 1 or w < 1:
        raise ConfigError(f"resize needs a positive (height, width), got {tuple(size)}")
    img = np.asarray(img, dtype=np.float32)
    if (h, w) == img.shape[:2]:
        return img.copy()
    shrinking = h <= img.shape[0] and w <= img.shape[1]
    out = cv2.resize(img, (w, h),  # OpenCV wants (width, height)
                     interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)
    if out.ndim == 2 and img.ndim == 3:  # cv2 drops a trailing channel axis of size 1
        out = out[:, :, None]
    return out if shrinking else np.clip(out, 0.0, 255.0, out=out)
