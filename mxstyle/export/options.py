"""``ExportOptions``: every setting of an export, validated, with the help text of its CLI option.

Each field's metadata gives ``help`` (argparse help, ``%(default)s`` allowed) and ``group`` (the
CLI's option group, ``None`` for the main one); optionally ``flag``, ``metavar`` and ``choices``.
:mod:`mxstyle.cli.export` builds ``mxstyle export``'s options from them. No heavy imports.
"""
import dataclasses
from dataclasses import dataclass
from typing import Optional, Tuple

from ..errors import ConfigError
from ..values import is_integer

__all__ = ["INT8_BACKENDS", "MXNET_CALIB_MODES", "ExportOptions"]

INT8_BACKENDS = ("onnxruntime", "mxnet")
MXNET_CALIB_MODES = ("naive", "entropy")
INT8_GROUP = "int8 and bf16"
STYLE_GROUP = "style (for the model card)"


def _option(default, help=None, group=INT8_GROUP, **cli):
    return dataclasses.field(default=default, metadata=dict(help=help, group=group, **cli))


def _check_positive_int(name, value):
    if not is_integer(value) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, not {value!r}")
    return int(value)


@dataclass(frozen=True)
class ExportOptions:
    """How :func:`~mxstyle.export.export_model` exports a checkpoint.

    int8 (``int8=True``): calibrates on ``calib_count`` photos from ``calib`` (default: the run's
    training photo folder, when it exists here) cropped to ``calib_size`` squares, checks each
    int8 model against its fp32 counterpart on ``holdout_count`` other photos and keeps it only
    when the PSNR of every held-out photo is >= ``min_psnr`` dB and it runs at least ``min_speedup`` times as fast as
    fp32, measured at ``bench_size`` (median of ``bench_runs``). ``mxnet_calib_mode``: 'naive' (min/max) or 'entropy' (slower).
    ``int8_backends``: which of ``("onnxruntime", "mxnet")`` to quantize for. The int8 settings
    are checked only with ``int8=True``; ``ConfigError`` names a bad one.

    bf16 (``bf16=True``): checks OpenVINO's bfloat16 arithmetic against fp32 on the same held-out
    photos and records in the card whether it passed the same ``min_psnr`` bound (it needs a CPU
    that computes bf16 natively; elsewhere the card records why it was not checked).

    ``style_image``: the painting, copied as ``style.jpg`` (longest side <= 512, JPEG quality 90);
    ``style_source`` / ``style_license``: free text for the card. ``progress``: progress bars.
    """

    int8: bool = _option(False, "also write int8 models (onnxruntime and MXNet)")
    bf16: bool = _option(False, "also check OpenVINO bf16 against fp32 on held-out photos; the runtime "
                                "uses bf16 only for models that pass")
    calib: Optional[str] = _option(
        None, "real photos to calibrate on (default: the run's training photos, when present)", metavar="PHOTO_DIR")
    calib_count: int = _option(16, "calibration photos (default %(default)s)")
    holdout_count: int = _option(4, "other photos the int8 output is checked on (default %(default)s)")
    calib_size: int = _option(512, "photos are cropped to this square (default %(default)s)")
    min_psnr: float = _option(
        35.0, "keep an int8 (or bf16) model only if its PSNR vs fp32 on every held-out photo is at least "
              "this (dB, default %(default)s)")
    min_speedup: float = _option(
        1.1, "keep an int8 model only if it measures at least this many times as fast as fp32 at "
             "--bench-size (default %(default)s)")
    mxnet_calib_mode: str = _option(
        "naive", "MXNet calibration: min/max or KL thresholds (slower) (default %(default)s)",
        choices=MXNET_CALIB_MODES)
    int8_backends: Tuple[str, ...] = _option(INT8_BACKENDS, "comma-separated: onnxruntime, mxnet (default %(default)s)")
    bench_size: int = _option(512, "square size of the speed measurement (default %(default)s)")
    bench_runs: int = _option(5, "timed runs, median reported (default %(default)s)")
    style_image: Optional[str] = _option(
        None, "the painting, copied as style.jpg (longest side <= 512)", STYLE_GROUP)
    style_source: Optional[str] = _option(None, "where the painting comes from (free text)", STYLE_GROUP)
    style_license: Optional[str] = _option(None, "the painting's license (free text)", STYLE_GROUP)
    progress: bool = _option(True, group=None, flag="--no-progress")

    def __post_init__(self):
        if not (self.int8 or self.bf16):
            return
        checked = dict(calib_count=_check_positive_int("calib-count", self.calib_count),
                       holdout_count=_check_positive_int("holdout-count", self.holdout_count),
                       calib_size=_check_positive_int("calib-size", self.calib_size),
                       bench_runs=_check_positive_int("bench-runs", self.bench_runs),
                       bench_size=_check_positive_int("bench-size", self.bench_size))
        try:
            checked["min_psnr"] = float(self.min_psnr)
        except (TypeError, ValueError):
            raise ConfigError(f"min-psnr must be a number of dB, not {self.min_psnr!r}") from None
        try:
            checked["min_speedup"] = float(self.min_speedup)
        except (TypeError, ValueError):
            raise ConfigError(f"min-speedup must be a number, not {self.min_speedup!r}") from None
        backends = checked["int8_backends"] = tuple(self.int8_backends)
        unknown = [b for b in backends if b not in INT8_BACKENDS]
        if unknown or not backends:
            raise ConfigError(f"int8 backends must be among {', '.join(INT8_BACKENDS)}, not {list(backends)}")
        if self.mxnet_calib_mode not in MXNET_CALIB_MODES:
            raise ConfigError(f"MXNet calibration mode must be 'naive' or 'entropy', not {self.mxnet_calib_mode!r}")
        for key, value in checked.items():
            object.__setattr__(self, key, value)  # frozen: the checked, normalised values

    @classmethod
    def build(cls, options=None, **overrides):
        """``options`` (or the defaults) with ``overrides`` applied, validated."""
        if options is None:
            return cls(**overrides)
        if not isinstance(options, cls):
            raise TypeError(f"options must be an {cls.__name__}, not {type(options).__name__}")
        return dataclasses.replace(options, **overrides) if overrides else options
