"""Start a wider generator from a trained narrower one, computing the same function (Net2Net-style
widening: Chen et al. 2016, "Net2Net: Accelerating Learning via Knowledge Transfer").

Two architectures of one family (``johnson_s8_skip`` with 8/16/32/64 channels and
``johnson_s8_skip_w12`` with 12/24/48/96) have parameters of the same names, each at least as large
in the wider one. Every trained array goes into the corner of the wider one's:

- a convolution's weight (O, I, kh, kw): the trained (O, I) block; the new output channels keep
  their fresh random weights (they see every input); the block from new inputs into old outputs is
  zero, so the old channels compute exactly what they did;
- biases, instance-norm scales and shifts: the trained values, the new channels their fresh ones.

The old output channels therefore never see the new ones, the last convolution (3 outputs) ignores
them, and the wider network's output is the trained one's; training then puts the new channels to
use. Adam's moments are widened the same way: the first moment with zeros for the new entries, the
second with the mean of the trained entries of the same parameter, so that the new weights start
with steps as small as the trained ones' (a fresh Adam's first steps move every weight by about
the full learning rate, which here perturbed the style loss by 1.8x at the second step).
"""
import pickle

import numpy as np

from ..errors import ConfigError

__all__ = ['is_widening', 'widen_array', 'widen_generator', 'widen_trainer_states']


def is_widening(source_shapes, target_shapes):
    """True if every parameter of ``source_shapes`` (``{name: shape}``) exists in ``target_shapes``
    with as many dimensions, each at least as large, and the two have the same names."""
    if set(source_shapes) != set(target_shapes):
        return False
    return all(len(s) == len(target_shapes[n]) and all(a <= b for a, b in zip(s, target_shapes[n]))
               for n, s in source_shapes.items())


def widen_array(trained, fresh, inputs_axis=None):
    """``fresh`` (the wider parameter's initial values) with ``trained`` in its leading corner; with
    ``inputs_axis`` (1 for an OIHW weight) the new inputs' weights into the trained outputs are zero."""
    trained, out = np.asarray(trained), np.array(fresh, copy=True)
    if inputs_axis is not None and trained.shape[inputs_axis] < out.shape[inputs_axis]:
        rows = tuple(slice(0, n) if k != inputs_axis else slice(trained.shape[k], None)
                     for k, n in enumerate(trained.shape))
        out[rows] = 0.0
    out[tuple(slice(0, n) for n in trained.shape)] = trained
    return out


def _inputs_axis(array):
    return 1 if array.ndim == 4 else None  # Conv2D weights are OIHW; 1-D parameters have no inputs


def widen_generator(source, target):
    """Write the parameters of the trained generator ``source`` into the initialized, wider
    ``target`` (see the module doc). Both are built with the same structure."""
    src = source._collect_params_with_prefix()
    dst = target._collect_params_with_prefix()
    if not is_widening({n: p.shape for n, p in src.items()}, {n: p.shape for n, p in dst.items()}):
        raise ConfigError(f'{getattr(target, "arch", "the target")} is not a widening of '
                          f'{getattr(source, "arch", "the source")}')
    for name, param in dst.items():
        trained = src[name].data().asnumpy()
        fresh = param.data().asnumpy()
        param.set_data(widen_array(trained, fresh, _inputs_axis(fresh)).astype(fresh.dtype))


def widen_trainer_states(source_file, target_params):
    """The bytes of an Adam states file (``Trainer.save_states``) of a narrower generator, widened
    for ``target_params`` (the wider trainer's parameters, in its order): each moment array gets
    the trained values in its corner and zeros elsewhere."""
    with open(source_file, 'rb') as f:
        states, optimizer = pickle.loads(f.read())
    import mxnet as mx

    widened = {}
    for index, state in states.items():
        shape = target_params[index].shape
        moments = state if isinstance(state, (tuple, list)) else (state,)
        grown = []
        for k, m in enumerate(m.asnumpy() for m in moments):
            # Adam's second moment: the trained entries' mean, so that the new weights' first steps
            # are as small as the trained ones' (with 0 they would each move by the full lr, and
            # the zero block into the old outputs with them)
            fill = float(m.mean()) if k == 1 and m.size else 0.0
            grown.append(mx.nd.array(widen_array(m, np.full(shape, fill, np.float32)), dtype=moments[k].dtype))
        widened[index] = type(state)(grown) if isinstance(state, (tuple, list)) else grown[0]
    return pickle.dumps((widened, optimizer))
