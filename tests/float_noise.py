"""Float32 rounding noise of a computation, measured where the test runs.

Two implementations of one function (hybridized and imperative, two engines, two batch sizes)
may differ by about the rounding noise of the computation, which depends on the CPU's kernels
(AVX2 and AVX-512 sum in other orders). A test that bounds their difference by a constant either
fails on another CPU or is too loose to see a real error; bounded by a small multiple of the
noise measured in the same run, it is neither. The noise is how far the output moves when every
input value moves one float32 ulp.
"""
import numpy as np

#: How many times the measured noise two implementations may differ by. Measured: 0.5-1.6x on
#: AVX-512 and AVX2 (oneDNN capped, and onnxruntime's AVX2 kernels under emulation); a wrongly
#: exported or wired operator moves outputs by whole units.
NOISE_FACTOR = 8.0


def nudged(x, seed=7):
    """``x`` (a numpy array) with every value moved one ulp, up or down at random (fixed seed)."""
    x = np.asarray(x, np.float32)
    signs = np.random.RandomState(seed).choice([-1.0, 1.0], x.shape).astype(np.float32)
    return np.nextafter(x, np.float32(np.inf) * signs).astype(np.float32)


def output_noise(fn, x):
    """``max |fn(x') - fn(x)|`` for ``x'`` = :func:`nudged` ``x``: ``fn`` maps a numpy array to one."""
    return float(np.abs(np.asarray(fn(nudged(x))) - np.asarray(fn(x))).max())


def allowed(*noises, floor=1e-5):
    """The difference two implementations may show: ``NOISE_FACTOR`` times the larger noise."""
    return NOISE_FACTOR * max(noises) + floor
