"""Tests of mxstyle.io. Every image is generated here; no files, no network."""

import os
import io
import struct

import cv2
import numpy as np
import pytest

from mxstyle.errors import ConfigError, ImageError
from mxstyle.io import (
    DEFAULT_MAX_PIXELS, READ_EXTENSIONS, SUPPORTED_FORMATS, WRITE_EXTENSIONS, encode_image, from_tensor, image_size, read_image,
    resize, resize_max_side, to_tensor, write_image,
)

# Six flat 16x16 blocks in a 2x3 grid (32 x 48 pixels): every rotation and mirror of it
# is different, and flat blocks survive JPEG well.
COLORS = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]],
                   [[255, 255, 0], [255, 0, 255], [0, 255, 255]]], np.uint8)
BLOCKS = np.kron(COLORS, np.ones((16, 16, 1), np.uint8))


def noise(h=20, w=30, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def cv2_bytes(arr_rgb_or_gray, ext, params=()):
    """Encode with OpenCV directly (RGB input is turned into OpenCV's BGR)."""
    arr = arr_rgb_or_gray
    if arr.ndim == 3 and arr.shape[2] == 3:
        arr = arr[:, :, ::-1]
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, [2, 1, 0, 3]]
    ok, buf = cv2.imencode(ext, np.ascontiguousarray(arr), list(params))
    assert ok
    return buf.tobytes()


def exif_app1(orientation, big_endian=True, extra=b""):
    """A JPEG APP1 segment holding an EXIF block with only the Orientation tag (0x0112)."""
    e = ">" if big_endian else "<"
    tiff = ((b"MM\0*" if big_endian else b"II*\0") + struct.pack(e + "I", 8)
            + struct.pack(e + "H", 1)                             # one IFD entry
            + struct.pack(e + "HHIH", 0x0112, 3, 1, orientation) + b"\0\0"  # SHORT, count 1
            + struct.pack(e + "I", 0))                            # no next IFD
    payload = b"Exif\0\0" + tiff + extra
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def jpeg_with_orientation(img, orientation, big_endian=True, extra=b""):
    data = cv2_bytes(img, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 100])
    return data[:2] + exif_app1(orientation, big_endian, extra) + data[2:]  # right after SOI


def write_bytes(path, data):
    path.write_bytes(data)
    return path


# ------------------------------------------------------------------- round trips

@pytest.mark.parametrize("ext", [".png", ".bmp", ".tif", ".tiff"])
def test_lossless_round_trip_is_exact(tmp_path, ext):
    img = noise()
    path = tmp_path / f"img{ext}"
    write_image(path, img)
    out = read_image(path)
    assert out.dtype == np.float32 and out.shape == (20, 30, 3)
    np.testing.assert_array_equal(out, img.astype(np.float32))


@pytest.mark.parametrize("ext", [".jpg", ".jpeg", ".webp"])
def test_lossy_round_trip_is_close(tmp_path, ext):
    y, x = np.mgrid[0:48, 0:64]
    img = np.stack([x * 4, y * 5, 255 - x * 2], -1).astype(np.float32)  # smooth gradients
    path = tmp_path / f"img{ext}"
    write_image(path, img, quality=95)
    out = read_image(str(path))
    assert out.shape == img.shape and out.dtype == np.float32
    assert np.abs(out - img).mean() < 2


def test_write_float_is_clipped_and_rounded(tmp_path):
    img = np.array([[[-10.0, 300.0, 127.6], [0.4, 254.5001, 3.0]]], np.float32)
    write_image(tmp_path / "f.png", img)
    np.testing.assert_array_equal(read_image(tmp_path / "f.png"),
                                  [[[0, 255, 128], [0, 255, 3]]])


@pytest.mark.parametrize("ext,magic", [(".png", b"\x89PNG"), (".jpg", b"\xff\xd8"),
                                       ("webp", b"RIFF"), (".BMP", b"BM"), (".tif", b"II*\0")])
def test_encode_image(ext, magic):
    data = encode_image(noise(), ext)
    assert data.startswith(magic)
    assert read_image(data).shape == (20, 30, 3)


def test_jpeg_quality_matters():
    img = noise(64, 64)
    assert len(encode_image(img, ".jpg", quality=20)) < len(encode_image(img, ".jpg", quality=95))


@pytest.mark.parametrize("quality", [0, 101, 9.5, True])
def test_bad_quality(quality):
    with pytest.raises(ConfigError, match="quality"):
        encode_image(noise(), ".jpg", quality=quality)


# ------------------------------------------------------------ every input kind agrees

def test_path_bytes_array_and_pil_agree(tmp_path):
    img = noise()
    path = write_bytes(tmp_path / "a.png", encode_image(img))
    data = path.read_bytes()
    expected = img.astype(np.float32)
    for src in (path, str(path), data, bytearray(data), memoryview(data), img,
                img.astype(np.float64), img.astype(np.uint16) * 257):
        np.testing.assert_array_equal(read_image(src), expected)
    Image = pytest.importorskip("PIL.Image")
    np.testing.assert_array_equal(read_image(Image.fromarray(img)), expected)
    with Image.open(path) as im:  # lazily opened file
        np.testing.assert_array_equal(read_image(im), expected)


def test_float_array_is_clipped():
    arr = np.array([[[-5.0, 100.5, 300.0]]])
    np.testing.assert_array_equal(read_image(arr), [[[0, 100.5, 255]]])


def test_gray(tmp_path):
    gray = noise()[:, :, 0]
    path = write_bytes(tmp_path / "g.png", cv2_bytes(gray, ".png"))
    for src in (path, gray, gray[:, :, None]):
        out = read_image(src)
        assert out.shape == (20, 30, 3)
        for c in range(3):
            np.testing.assert_array_equal(out[:, :, c], gray)


def test_rgba_is_composited_on_white(tmp_path):
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (10, 20, 30, 0)      # fully transparent -> white
    rgba[0, 1] = (10, 20, 30, 255)    # opaque -> unchanged
    rgba[1, 0] = (0, 0, 0, 51)        # 20% black over white -> 204
    rgba[1, 1] = (200, 100, 0, 255)
    expected = [[[255, 255, 255], [10, 20, 30]], [[204, 204, 204], [200, 100, 0]]]
    path = write_bytes(tmp_path / "t.png", cv2_bytes(rgba, ".png"))
    for src in (path, rgba):
        np.testing.assert_allclose(read_image(src), expected, atol=1e-3)


def test_16_bit_png(tmp_path):
    rgb16 = (noise().astype(np.uint16) * 257)
    rgb16[0, 0] = (65535, 0, 32896)  # 32896 = 128 * 257
    path = write_bytes(tmp_path / "deep.png", cv2_bytes(rgb16, ".png"))
    out = read_image(path)
    np.testing.assert_allclose(out, rgb16 / 257.0, atol=1e-3)
    np.testing.assert_allclose(out[0, 0], [255, 0, 128], atol=1e-3)
    gray16 = np.array([[0, 65535], [257, 514]], np.uint16)
    out = read_image(write_bytes(tmp_path / "g16.png", cv2_bytes(gray16, ".png")))
    np.testing.assert_allclose(out[:, :, 1], [[0, 255], [1, 2]], atol=1e-3)


def test_float_tiff_is_scaled_from_unit_range(tmp_path):
    img = np.full((4, 5), 0.5, np.float32)  # gray: OpenCV stores float RGB lossily (LogLuv)
    out = read_image(write_bytes(tmp_path / "f.tif", cv2_bytes(img, ".tiff")))
    np.testing.assert_allclose(out, 127.5, atol=1e-3)


def test_palette_png_via_pil(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    im = Image.new("P", (3, 1))
    im.putpalette([255, 0, 0, 0, 0, 255, 0, 0, 0])  # index 0 red, 1 blue, 2 black
    im.putdata([0, 1, 2])
    im.info["transparency"] = 2                     # index 2 fully transparent
    path = tmp_path / "pal.png"
    im.save(path, transparency=2)
    expected = [[[255, 0, 0], [0, 0, 255], [255, 255, 255]]]
    np.testing.assert_array_equal(read_image(path), expected)   # decoded by OpenCV
    with Image.open(path) as opened:
        assert opened.mode == "P"
        np.testing.assert_array_equal(read_image(opened), expected)  # converted by PIL


# ------------------------------------------------------------------- EXIF orientation

# What each orientation must do to the stored pixels for the image to look right.
ORIENT = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: np.rot90(a, 2),
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),   # 90 degrees clockwise
    7: lambda a: np.rot90(a, 2).transpose(1, 0, 2),
    8: lambda a: np.rot90(a, 1),    # 90 degrees counter-clockwise
}


def top_left_color(img):
    return img[4, 4]


@pytest.mark.parametrize("big_endian", [True, False])
def test_exif_orientation_3_6_8(tmp_path, big_endian):
    red, green, blue, yellow, magenta, cyan = COLORS.reshape(6, 3).astype(np.float32)
    cases = {  # orientation: (shape, color expected at the top left, at the top right)
        3: ((32, 48, 3), cyan, yellow),     # upside down: last block comes first
        6: ((48, 32, 3), yellow, red),      # turned clockwise: bottom-left block to top-left
        8: ((48, 32, 3), blue, cyan),       # turned counter-clockwise
    }
    for orientation, (shape, tl, tr) in cases.items():
        path = write_bytes(tmp_path / f"o{orientation}.jpg",
                           jpeg_with_orientation(BLOCKS, orientation, big_endian))
        out = read_image(path)
        assert out.shape == shape
        np.testing.assert_allclose(out[4, 4], tl, atol=12)
        np.testing.assert_allclose(out[4, -5], tr, atol=12)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_in_jpeg(orientation):
    # The EXIF block does not change the compressed pixels, so the result must be exactly
    # the plain decode, transformed.
    plain = read_image(cv2_bytes(BLOCKS, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 100]))
    out = read_image(jpeg_with_orientation(BLOCKS, orientation))
    np.testing.assert_array_equal(out, ORIENT[orientation](plain))


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "TIFF"])
@pytest.mark.parametrize("orientation", [3, 6, 7, 8])
def test_exif_orientation_other_formats_like_pil(fmt, orientation):
    """PNG eXIf, WebP EXIF and the TIFF tag are honoured, exactly as PIL does it."""
    Image = pytest.importorskip("PIL.Image")
    from PIL import ImageOps
    import io
    buf = io.BytesIO()
    im = Image.fromarray(BLOCKS)
    if fmt == "TIFF":
        im.save(buf, fmt, tiffinfo={0x0112: orientation})
    else:
        exif = Image.Exif()
        exif[0x0112] = orientation
        im.save(buf, fmt, exif=exif, **({"lossless": True} if fmt == "WEBP" else {}))
    data = buf.getvalue()
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
    np.testing.assert_array_equal(read_image(data), expected)
    np.testing.assert_array_equal(expected, ORIENT[orientation](BLOCKS))
    assert image_size(data) == expected.shape[:2]  # the header read agrees with the decode


def test_bad_orientation_value_is_ignored():
    out = read_image(jpeg_with_orientation(BLOCKS, 42))
    assert out.shape == BLOCKS.shape


# --------------------------------------------------------------------- bad inputs

def assert_image_error(src, *needles, **kwargs):
    with pytest.raises(ImageError) as info:
        read_image(src, **kwargs)
    message = str(info.value)
    for needle in needles:
        assert needle in message, message
    return message


def test_missing_file(tmp_path):
    assert_image_error(tmp_path / "nope.jpg", "nope.jpg", "no such file")


def test_directory(tmp_path):
    (tmp_path / "dir.png").mkdir()
    assert_image_error(tmp_path / "dir.png", "dir.png", "directory")


def test_empty_file(tmp_path):
    assert_image_error(write_bytes(tmp_path / "empty.png", b""), "empty.png", "empty")
    assert_image_error(b"", "<bytes>")


def test_text_file_named_jpg(tmp_path):
    path = write_bytes(tmp_path / "notes.jpg", b"hello, this is not a picture\n" * 10)
    assert_image_error(path, "notes.jpg", "not an image")
    assert_image_error(b"GIF89a?", "<bytes>")  # a recognized signature, but nothing after it


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_truncated_jpeg_and_png(tmp_path, ext):
    # A smooth picture: a cut JPEG of it is decoded by OpenCV as a half-gray image.
    y, x = np.mgrid[0:240, 0:320]
    img = np.stack([x % 256, y % 256, (x + y) % 256], -1).astype(np.uint8)
    data = encode_image(img, ext)
    for cut in (len(data) // 2, len(data) - 1, 100):
        path = write_bytes(tmp_path / f"cut{ext}", data[:cut])
        assert_image_error(path, f"cut{ext}", "truncated")


def test_truncated_jpeg_with_end_marker_in_exif_thumbnail(tmp_path):
    # An EOI marker (FFD9) inside the EXIF block (as a thumbnail has) must not fool the check.
    data = jpeg_with_orientation(BLOCKS, 1, extra=b"\xff\xd8 thumbnail \xff\xd9")
    path = write_bytes(tmp_path / "thumb.jpg", data[:len(data) * 2 // 3])
    assert_image_error(path, "thumb.jpg", "truncated")
    assert read_image(data).shape == BLOCKS.shape  # the whole file is fine


def test_jpeg_with_data_after_end_marker_is_fine():
    data = encode_image(BLOCKS, ".jpg") + b"trailing junk, e.g. an appended video" * 100
    assert read_image(data).shape == BLOCKS.shape


@pytest.mark.parametrize("ext", [".webp", ".bmp", ".tif"])
def test_truncated_other_formats(ext):
    data = encode_image(noise(64, 64), ext)
    for cut in (len(data) // 2, len(data) - 10):
        assert_image_error(data[:cut], "<bytes>")


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".tif", ".webp"])
def test_over_pixel_limit(tmp_path, ext):
    path = write_bytes(tmp_path / f"big{ext}", encode_image(noise(20, 20), ext))
    message = assert_image_error(path, f"big{ext}", "20x20", "400", "100", "max_pixels=",
                                 max_pixels=100)
    assert "decompression" in message
    assert read_image(path, max_pixels=400).shape == (20, 20, 3)
    assert read_image(path, max_pixels=None).shape == (20, 20, 3)


def test_pixel_limit_on_arrays_and_pil():
    assert_image_error(noise(20, 20), "<array>", "20x20", max_pixels=399)
    Image = pytest.importorskip("PIL.Image")
    assert_image_error(Image.new("RGB", (20, 20)), "20x20", max_pixels=399)


def test_default_pixel_limit():
    assert DEFAULT_MAX_PIXELS == 100_000_000


def png_chunk(ctype, body):
    import zlib
    return (struct.pack(">I", len(body)) + ctype + body
            + struct.pack(">I", zlib.crc32(ctype + body) & 0xFFFFFFFF))


def test_png_bomb_is_refused_from_its_header(tmp_path, monkeypatch):
    # 100000 x 100000 RGB = 30 GB once decoded, announced by a tiny file.
    import zlib
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    data = (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
            + png_chunk(b"IDAT", zlib.compress(b"\0" * 300_001)) + png_chunk(b"IEND", b""))
    path = write_bytes(tmp_path / "bomb.png", data)

    def no_decoding(*args):
        raise AssertionError("the decoder was called: the bomb was not refused from its header")

    monkeypatch.setattr(cv2, "imdecode", no_decoding)
    assert_image_error(path, "bomb.png", "100000x100000", "max_pixels=")


def test_jpeg_bomb_is_refused_from_its_header():
    data = bytearray(encode_image(BLOCKS, ".jpg"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", 60000, 60000)  # height, width
    assert_image_error(bytes(data), "<bytes>", "60000x60000")


@pytest.mark.parametrize("arr", [
    np.zeros((4, 4, 3), np.int64), np.zeros((4, 4, 3), bool), np.zeros((4, 4, 3), np.int8),
    np.zeros((4, 4, 3), np.complex64)], ids=["int64", "bool", "int8", "complex"])
def test_bad_array_dtype(arr):
    assert_image_error(arr, "<array>", str(arr.dtype))


@pytest.mark.parametrize("shape", [(4,), (4, 4, 2), (4, 4, 5), (1, 4, 4, 3), (0, 4, 3)])
def test_bad_array_shape(shape):
    assert_image_error(np.zeros(shape, np.uint8), "<array>")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_in_float_array(bad):
    arr = np.zeros((4, 4, 3), np.float32)
    arr[1, 2, 0] = bad
    assert_image_error(arr, "<array>", "NaN")


def test_unsupported_source_type():
    assert_image_error([[1, 2], [3, 4]], "list")


# ------------------------------------------------------------------------ writing

def test_write_creates_parents_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "a" / "b" / "out.jpg"
    write_image(path, noise())
    write_image(path, noise(seed=1))  # overwrite in place
    assert os.listdir(path.parent) == ["out.jpg"]
    assert read_image(path).shape == (20, 30, 3)


def test_write_unknown_extension(tmp_path):
    for name in ("out.gif", "out"):
        with pytest.raises(ImageError) as info:
            write_image(tmp_path / name, noise())
        message = str(info.value)
        assert name in message and ".png" in message and ".jpg" in message
    assert os.listdir(tmp_path) == []


def test_write_failure_leaves_nothing_behind(tmp_path):
    (tmp_path / "taken.png").mkdir()  # cannot replace a directory with a file
    with pytest.raises(ImageError, match="taken.png"):
        write_image(tmp_path / "taken.png", noise())
    assert os.listdir(tmp_path) == ["taken.png"]


@pytest.mark.parametrize("bad", [np.zeros((4, 4)), np.zeros((4, 4, 4)), np.zeros((0, 4, 3)),
                                 np.full((2, 2, 3), np.nan), np.zeros((2, 2, 3), bool)])
def test_write_bad_image(tmp_path, bad):
    with pytest.raises(ImageError):
        write_image(tmp_path / "x.png", bad)
    assert os.listdir(tmp_path) == []


def test_write_extensions_listed():
    assert set(WRITE_EXTENSIONS) >= {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}


# --------------------------------------------------------- tensors and resizing

class FakeNDArray:
    def __init__(self, arr):
        self.arr = arr

    def asnumpy(self):
        return self.arr


def test_tensor_round_trip():
    img = noise().astype(np.float32)
    t = to_tensor(img)
    assert t.shape == (1, 3, 20, 30) and t.dtype == np.float32 and t.flags.c_contiguous
    np.testing.assert_array_equal(t[0, 0], img[:, :, 0])
    for back in (from_tensor(t), from_tensor(t[0]), from_tensor(FakeNDArray(t))):
        assert back.shape == (20, 30, 3) and back.dtype == np.float32
        np.testing.assert_array_equal(back, img)


@pytest.mark.parametrize("shape", [(2, 3, 4, 4), (4, 4, 3), (1, 1, 4, 4), (4, 4)])
def test_from_tensor_bad_shape(shape):
    with pytest.raises(ImageError):
        from_tensor(np.zeros(shape))


def test_to_tensor_bad_shape():
    with pytest.raises(ImageError):
        to_tensor(np.zeros((3, 4, 4)))


def test_resize_max_side():
    img = noise(100, 50).astype(np.float32)
    assert resize_max_side(img, None) is img
    small = resize_max_side(img, 40)
    assert small.shape == (40, 20, 3) and small.dtype == np.float32
    big = resize_max_side(img, 300)
    assert big.shape == (300, 150, 3)
    assert big.min() >= 0 and big.max() <= 255  # bicubic overshoot is clipped
    assert resize_max_side(noise(30, 90), 10).shape == (3, 10, 3)
    assert resize_max_side(noise(1, 500), 10).shape == (1, 10, 3)  # never 0 pixels
    for bad in (0, -5, 2.5):
        with pytest.raises(ConfigError):
            resize_max_side(img, bad)


def test_resize_takes_height_then_width():
    img = noise(10, 20).astype(np.float32)
    assert resize(img, (5, 8)).shape == (5, 8, 3)
    assert resize(img, (40, 7)).shape == (40, 7, 3)
    same = resize(img, (10, 20))
    np.testing.assert_array_equal(same, img)
    assert same is not img
    # area averaging of a flat image keeps it flat
    np.testing.assert_allclose(resize(np.full((8, 8, 3), 77.0), (2, 2)), 77.0)
    with pytest.raises(ConfigError):
        resize(img, (0, 5))


# ------------------------------------------------ formats OpenCV does not read: through Pillow

def pil_bytes(images, fmt, **options):
    """Encode one PIL image, or the frames of an animation, with Pillow."""
    from PIL import Image

    frames = [Image.fromarray(a) if isinstance(a, np.ndarray) else a for a in images]
    buf = io.BytesIO()
    frames[0].save(buf, fmt, save_all=len(frames) > 1, append_images=frames[1:], **options)
    return buf.getvalue()


def test_animated_gif_gives_its_first_frame(tmp_path):
    path = write_bytes(tmp_path / "anim.gif", pil_bytes([BLOCKS, 255 - BLOCKS], "GIF", duration=100))
    np.testing.assert_array_equal(read_image(path), BLOCKS.astype(np.float32))


def test_gif_with_transparency_is_composited_on_white():
    from PIL import Image

    frame = Image.fromarray(BLOCKS).convert("P", palette=Image.ADAPTIVE, colors=8)
    red = frame.getpixel((0, 0))
    data = pil_bytes([frame], "GIF", transparency=red)
    out = read_image(data)
    np.testing.assert_array_equal(out[:16, :16], 255.0)       # the transparent block: white
    assert (out[:16, 16:32] == [0, 255, 0]).all()                # the next one: green


def test_cmyk_jpeg_reads_as_rgb():
    from PIL import Image

    data = pil_bytes([Image.fromarray(BLOCKS).convert("CMYK")], "JPEG", quality=95)
    expected = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), np.float32)
    out = read_image(data)
    assert out.shape == BLOCKS.shape
    assert np.abs(out - expected).max() <= 2          # Pillow's own decoding, to rounding
    assert np.abs(out - BLOCKS).mean() < 8            # and the colours of the blocks


def test_avif_through_pillow():
    from PIL import features

    if not features.check("avif"):
        pytest.skip("this Pillow build has no AVIF support")
    out = read_image(pil_bytes([BLOCKS], "AVIF", quality=100))
    assert out.shape == BLOCKS.shape and np.abs(out - BLOCKS).mean() < 8


def test_heic_with_exif_orientation(tmp_path):
    pillow_heif = pytest.importorskip(
        "pillow_heif", reason="pillow-heif is not installed (the optional extra: mxstyle[heif])")
    from PIL import Image

    pillow_heif.register_heif_opener()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = write_bytes(tmp_path / "phone.heic", pil_bytes([BLOCKS], "HEIF", quality=95, exif=exif.tobytes()))
    out = read_image(path)
    expected = np.rot90(BLOCKS, k=-1)
    assert out.shape == expected.shape                # 48 x 32: turned as the camera meant
    assert np.abs(out - expected).mean() < 10         # HEVC at quality 95 on flat blocks


def test_heic_without_pillow_heif_says_how_to_get_it(monkeypatch):
    import builtins

    # the first bytes of a real HEIC file: a 'ftyp' box with the 'heic' brand
    data = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + b"\0" * 64
    real_import = builtins.__import__

    def no_heif(name, *args, **kwargs):
        if name == "pillow_heif":
            raise ImportError("No module named 'pillow_heif'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_heif)
    assert_image_error(data, "<bytes>", "HEIC/HEIF", "pillow-heif", "mxstyle[heif]")


def test_pillow_formats_opencv_lacks():
    out = read_image(pil_bytes([BLOCKS], "TGA"))
    np.testing.assert_array_equal(out, BLOCKS.astype(np.float32))


@pytest.mark.parametrize("data", [b"%PDF-1.7\n" + b"\0" * 200, b"just some text, not an image"],
                         ids=["pdf", "text"])
def test_unsupported_format_says_so_and_lists_what_is(data):
    with pytest.raises(ImageError) as info:
        read_image(data)
    message = str(info.value)
    assert "unsupported format" in message and SUPPORTED_FORMATS in message
    assert "damaged" not in message


@pytest.mark.parametrize("fmt", ["GIF", "TGA_truncated"])
def test_damaged_file_of_a_known_format_says_damaged(fmt):
    if fmt == "GIF":
        good = pil_bytes([BLOCKS, 255 - BLOCKS], "GIF")
        data = good[:len(good) // 2]
        with pytest.raises(ImageError, match="damaged") as info:
            read_image(data)
        assert "GIF" in str(info.value) and "unsupported" not in str(info.value)
    else:
        good = pil_bytes([noise(40, 40)], "TGA")
        with pytest.raises(ImageError, match="damaged|incomplete"):
            read_image(good[:len(good) // 2])


def test_read_extensions_cover_the_write_ones_and_phone_formats():
    assert set(WRITE_EXTENSIONS) <= set(READ_EXTENSIONS)
    assert {".gif", ".heic", ".heif", ".avif"} <= set(READ_EXTENSIONS)


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_reduced_jpeg_decode_and_luma_keep_size_and_orientation(orientation):
    """``max_side`` decodes a large JPEG at reduced scale and ``read_luminance`` as luma only:
    both give what the full decode would, oriented as the camera meant."""
    from mxstyle.color import luminance_u8
    from mxstyle.io import image_size, read_luminance

    y, x = np.mgrid[0:600, 0:900]
    img = np.stack([x % 255, y % 255, (x * y) % 255], 2).astype(np.uint8)
    data = jpeg_with_orientation(img, orientation)
    full = read_image(data)
    small = read_image(data, max_side=200)
    assert small.shape == resize_max_side(full, 200).shape
    assert np.abs(small - resize_max_side(full, 200)).mean() < 6  # measured 2.6 on this pattern
    lum = read_luminance(data)
    assert lum.shape == full.shape[:2] == image_size(data) and lum.dtype == np.uint8
    assert np.abs(lum.astype(np.float32) - luminance_u8(full)).mean() < 1
