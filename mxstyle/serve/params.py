"""The request parameters of a stylize call (query string, form fields or OIP parameters), checked
before any work is queued, and the one error type a handler raises to answer with JSON."""
import math
from dataclasses import dataclass
from typing import Optional

__all__ = ["HTTPError", "StylizeParams", "PARAMETERS", "FORMATS", "parse_params", "parse_bool"]

#: Output format -> (file extension for mxstyle.io.encode_image, media type).
FORMATS = {"jpeg": (".jpg", "image/jpeg"), "jpg": (".jpg", "image/jpeg"), "png": (".png", "image/png"),
           "webp": (".webp", "image/webp")}

#: Every parameter a stylize request may carry.
PARAMETERS = ("model", "strength", "preserve_colors", "work_side", "format", "quality")

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


class HTTPError(Exception):
    """Answer the request with ``status`` and ``{"error": message}``."""

    def __init__(self, status, message, headers=None):
        super().__init__(message)
        self.status, self.message, self.headers = int(status), str(message), dict(headers or {})


@dataclass(frozen=True)
class StylizeParams:
    """Checked parameters; ``work_side`` is ``"default"`` (the model's), None (every pixel) or an int."""

    model: Optional[str] = None
    strength: float = 1.0
    preserve_colors: bool = False
    work_side: object = "default"
    format: str = "jpeg"
    quality: int = 90

    @property
    def extension(self):
        return FORMATS[self.format][0]

    @property
    def media_type(self):
        return FORMATS[self.format][1]

    def stylize_kwargs(self):
        return dict(strength=self.strength, preserve_colors=self.preserve_colors, work_side=self.work_side)


def parse_params(values, *, ignore=()):
    """:class:`StylizeParams` from a mapping of strings (or JSON values); an unknown name or a bad
    value raises :class:`HTTPError` 422 with a one-line message. Names in ``ignore`` are skipped."""
    unknown = sorted(k for k in values if k not in PARAMETERS and k not in ignore)
    if unknown:
        raise HTTPError(422, f"unknown parameter {unknown[0]!r}; the parameters are: {', '.join(PARAMETERS)}")
    out = {}
    if values.get("model") not in (None, ""):
        out["model"] = str(values["model"])
    if values.get("strength") not in (None, ""):
        out["strength"] = _strength(values["strength"])
    if "preserve_colors" in values:
        out["preserve_colors"] = parse_bool("preserve_colors", values["preserve_colors"])
    if values.get("work_side") not in (None, ""):
        out["work_side"] = _work_side(values["work_side"])
    if values.get("format") not in (None, ""):
        fmt = str(values["format"]).lower()
        if fmt not in FORMATS:
            raise HTTPError(422, f"format must be jpeg, png or webp, got {values['format']!r}")
        out["format"] = "jpeg" if fmt == "jpg" else fmt
    if values.get("quality") not in (None, ""):
        out["quality"] = _integer("quality", values["quality"], 1, 100)
    return StylizeParams(**out)


def parse_bool(name, value):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise HTTPError(422, f"{name} must be true or false, got {value!r}")


def _strength(value):
    try:
        number = None if isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        number = None
    if number is None or math.isnan(number) or not 0.0 <= number <= 1.0:
        raise HTTPError(422, f"strength must be a number from 0 to 1, got {value!r}")
    return number


def _work_side(value):
    if isinstance(value, str) and value.strip().lower() in ("full", "none"):
        return None
    return _integer("work_side", value, 16, None, extra=", or full")


def _integer(name, value, low, high, extra=""):
    number = None
    if not isinstance(value, (bool, float)):
        try:
            number = int(str(value).strip())
        except ValueError:
            pass
    if number is None or number < low or (high is not None and number > high):
        bound = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise HTTPError(422, f"{name} must be an integer {bound}{extra}, got {value!r}")
    return number
