"""Checks of option values that every stage makes the same way."""
import numbers

__all__ = ["is_integer"]


def is_integer(value):
    """True for Python and numpy integers, False for bools (``True`` is an ``int`` in Python, but
    ``size=True`` is a mistake, not 1) and for everything else."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)
