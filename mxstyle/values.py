"""Rules about plain values that every stage applies the same way (no heavy imports)."""
import math
import numbers

__all__ = ["is_integer", "round_up"]


def is_integer(value):
    """True for Python and numpy integers, False for bools (``True`` is an ``int`` in Python, but
    ``size=True`` is a mistake, not 1) and for everything else."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def round_up(value, multiple):
    """The smallest multiple of ``multiple`` (an int) that is at least ``value`` (int or float)."""
    return -(-int(math.ceil(value)) // multiple) * multiple
