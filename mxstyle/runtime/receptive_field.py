"""The receptive-field rule shared by the ONNX and MXNet graph walks: how a layer changes a tensor's
*field* ``(jump, radius)`` -- start pixels per pixel of the tensor, and an upper bound of how far
(in start pixels) one of its pixels sees.
"""

__all__ = ['START', 'merge', 'window', 'resize']

#: the field of the start tensor itself
START = (1.0, 0.0)


def merge(fields):
    """The field a node starts from: the finest jump and the widest radius of its inputs."""
    return min(f[0] for f in fields), max(f[1] for f in fields)


def window(field, kernel, strides, dilations, transposed=False):
    """The field after a convolution or pool (``transposed``: a transposed convolution)."""
    jump, radius = field
    # an odd kernel reaches (k - 1) / 2 to each side; an even one (pools) is asymmetric: count its
    # whole width
    reach = max(((k - 1) // 2 if k % 2 else k - 1) * d for k, d in zip(kernel, dilations))
    if transposed:
        return jump / max(strides), radius + (reach + 1) * jump
    return jump * max(strides), radius + reach * jump


def resize(field, scale):
    """The field after a nearest or linear resize by ``scale``: at most one source pixel to either
    side."""
    jump, radius = field
    return jump / float(scale), radius + jump
