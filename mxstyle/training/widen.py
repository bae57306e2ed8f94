"""Start a wider or deeper generator from a trained smaller one, computing the same function
(Net2Net-style growth: Chen et al. 2016, "Net2Net: Accelerating Learning via Knowledge Transfer").

Two architectures of one family (``johnson_s8_skip`` with 8/16/32/64 channels,
``johnson_s8_skip_w12`` with 12/24/48/96, ``johnson_s8_skip_w12_decres`` with residual blocks added
to its decoder, ``johnson_s8_skip_w12_decres2`` with two per stage) share their parameters' names, each at least as large in the grown one, which may
have more: new blocks, which its constructor makes start as the identity
(:class:`~mxstyle.models.layers.ResidualBlock`'s ``identity_init``) and which keep their fresh
values here. Every trained array goes into the corner of the grown one's:

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

__all__ = ['is_widening', 'widen_array', 'widen_generator', 'structural_names', 'trainer_order',
           'widen_trainer_states']


def is_widening(source_shapes, target_shapes):
    """True if every parameter of ``source_shapes`` (``{name: shape}``) exists in ``target_shapes``
    with as many dimensions, each at least as large (the target may have more parameters)."""
    if not set(source_shapes) <= set(target_shapes):
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
        if name not in src:
            continue  # a new block: its initialization makes it the identity
        trained = src[name].data().asnumpy()
        fresh = param.data().asnumpy()
        param.set_data(widen_array(trained, fresh, _inputs_axis(fresh)).astype(fresh.dtype))


def structural_names(block, params):
    """The structural names (``features.0.conv.conv.weight``) of ``params``, parameters of ``block``,
    in their order."""
    names = {id(p): n for n, p in block._collect_params_with_prefix().items()}
    return [names[id(p)] for p in params]


def trainer_order(block):
    """The structural names of ``block``'s parameters in the order of a ``gluon.Trainer`` over
    ``block.collect_params()``, the indices of its states file: the Trainer sorts them by full name,
    so a grown network's new blocks can sit between the old ones."""
    params = block.collect_params()
    return structural_names(block, [params[name] for name in sorted(params.keys())])


def widen_trainer_states(source_file, source_names, target_names, target_params):
    """The bytes of an Adam states file (``Trainer.save_states``) of a smaller generator, grown for
    ``target_params`` (the grown trainer's parameters, in its order); ``source_names`` and
    ``target_names``: both trainers' structural parameter names in their order (:func:`trainer_order`,
    :func:`structural_names`).
    Each moment array gets the trained values in its corner and zeros elsewhere; a new block's
    parameters get no state here, so the optimizer starts them fresh."""
    with open(source_file, 'rb') as f:
        states, optimizer = pickle.loads(f.read())
    import mxnet as mx

    to_target = {i: target_names.index(name) for i, name in enumerate(source_names)}
    widened = {}
    for index, state in states.items():
        shape = target_params[to_target[index]].shape
        moments = state if isinstance(state, (tuple, list)) else (state,)
        grown = []
        for k, m in enumerate(m.asnumpy() for m in moments):
            # Adam's second moment: the trained entries' mean, so that the new weights' first steps
            # are as small as the trained ones' (with 0 they would each move by the full lr, and
            # the zero block into the old outputs with them)
            fill = float(m.mean()) if k == 1 and m.size else 0.0
            grown.append(mx.nd.array(widen_array(m, np.full(shape, fill, np.float32)), dtype=moments[k].dtype))
        widened[to_target[index]] = type(state)(grown) if isinstance(state, (tuple, list)) else grown[0]
    # the per-parameter update counts (Adam's bias correction) follow their parameters
    tables = [optimizer._index_update_count, optimizer.idx2name, *optimizer._all_index_update_counts.values()]
    for counts in {id(t): t for t in tables}.values():  # _index_update_count is one of the others
        moved = {to_target[i]: n for i, n in counts.items() if i in to_target}
        counts.clear()
        counts.update(moved)
    return pickle.dumps((widened, optimizer))
