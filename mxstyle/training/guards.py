"""Watchdogs for the failures seen in practice when training style networks.

- the loss becomes NaN or Inf: :class:`DivergedError` stops the run before the bad update
  is applied (the last checkpoint stays the last good one);
- the output collapses to a constant image (every pixel the mean colour);
- the output takes a strong one-channel colour cast that the photos do not have.

The last two are reported (not fatal) once they have held for ``patience`` consecutive
checks, with the step and the numbers; training a style can pass through them and recover.
"""
from dataclasses import dataclass

import numpy as np

from ..errors import MxstyleError


class DivergedError(MxstyleError):
    """The training loss became NaN or infinite."""


@dataclass
class Alert:
    kind: str      # "collapse" or "color_cast"
    step: int
    message: str


def check_finite(step, losses):
    """Raise DivergedError if any loss term is NaN or infinite."""
    bad = {k: v for k, v in losses.items() if not np.isfinite(v)}
    if bad:
        terms = ", ".join(f"{k}={v}" for k, v in losses.items())
        raise DivergedError(f"the loss is not finite at step {step} ({terms}); the update was not applied. "
                            "Lower --lr or the loss weights, then --resume from the last checkpoint.")


def output_stats(photos, stylized):
    """Pixel spread and per-channel means of a batch (NCHW, 0-255) of photos and outputs."""
    std = float(stylized.std(axis=(2, 3)).mean())
    out_means = stylized.mean(axis=(0, 2, 3))
    in_means = photos.mean(axis=(0, 2, 3))
    return dict(std=std, photo_std=float(photos.std(axis=(2, 3)).mean()),
                channel_means=[float(v) for v in out_means], photo_channel_means=[float(v) for v in in_means])


class OutputGuards:
    """Watch the generator's outputs for collapse and colour casts."""

    def __init__(self, patience=3, collapse_std=2.0, cast_spread=90.0):
        self.patience = patience
        self.collapse_std = collapse_std      # pixel std (0-255) below which an output is "constant"
        self.cast_spread = cast_spread        # extra max-min spread of channel means, vs the photos
        self._streak = {"collapse": 0, "color_cast": 0}

    def check(self, step, photos, stylized):
        """Return the alerts that fire at this step (each fires once per episode)."""
        stats = output_stats(photos, stylized)
        means, photo_means = np.array(stats["channel_means"]), np.array(stats["photo_channel_means"])
        extra_spread = float(np.ptp(means) - np.ptp(photo_means))
        conditions = {
            "collapse": (stats["std"] < self.collapse_std,
                         f"output collapsed to a near-constant image at step {step}: pixel std "
                         f"{stats['std']:.2f} (photos {stats['photo_std']:.1f}), channel means "
                         f"{np.round(means, 1).tolist()}"),
            "color_cast": (extra_spread > self.cast_spread,
                           f"strong colour cast at step {step}: output channel means (RGB) "
                           f"{np.round(means, 1).tolist()} vs photos {np.round(photo_means, 1).tolist()}"),
        }
        alerts = []
        for kind, (bad, message) in conditions.items():
            self._streak[kind] = self._streak[kind] + 1 if bad else 0
            if self._streak[kind] == self.patience:
                alerts.append(Alert(kind, step, message))
        return alerts
