"""ONNX graph analysis and surgery for tiled inference with whole-image instance-norm statistics.

Instance normalization makes a generator's output at a pixel depend on the whole image (through the
per-channel mean and variance of every normalized layer), so running tiles on their own gives each
tile its own statistics: seams and colour shifts. With the statistics *fixed* (given from outside)
the network becomes a plain fully convolutional one whose output at a pixel depends only on a
finite neighbourhood (its receptive field), and tiles with a margin wider than that field give
exactly the untiled result. What is here:

* :func:`receptive_field` -- stride and receptive-field radius of every tensor, from the graph's
  convolutions, pools and resizes (an upper bound; the per-layer rule is in
  :mod:`~mxstyle.runtime.receptive_field`);
* :func:`norm_layers` -- the ``InstanceNormalization`` layers, their affine weights and strides;
* :func:`fixed_model` -- every ``InstanceNormalization(X, scale, B)`` replaced by
  ``X * norm{i}_a + norm{i}_b`` with ``a = scale / sqrt(var + eps)`` and ``b = B - mean * a`` fed
  as graph inputs of shape ``[1, C, 1, 1]``;
* :func:`stats_model` -- the graph plus the per-channel mean and variance of every norm's input as
  extra outputs (for the approximate mode: statistics of a downscaled copy of the image);
* :func:`cut_tensors` and :func:`stage_model` -- the exact mode runs the fixed graph in *stages*
  between *cut tensors* (a tensor every path from the image to the output goes through, e.g. the
  residual stream between two residual blocks); :func:`stage_model` extracts the sub-graph of a
  stage, optionally ending at one norm's input with outputs that sum that input over a 0/1 mask
  (per-channel sum and sum of squared deviations from the tile mean, combined over tiles in
  float64 with Chan's formula).
"""

import numpy as np

from . import receptive_field as field

__all__ = ['NormInfo', 'norm_layers', 'receptive_field', 'stats_model', 'fixed_model',
           'cut_tensors', 'stage_model', 'image_input']


class NormInfo:
    """One instance-norm layer: its input tensor, channels, epsilon, affine weights, stride."""

    def __init__(self, index, node, channels, eps, gamma, beta, jump):
        self.index = index
        self.input = node.input[0]
        self.output = node.output[0]
        self.channels = channels
        self.eps = eps
        self.gamma = gamma
        self.beta = beta
        self.jump = jump

    @property
    def tag(self):
        return 'norm%d' % self.index


def _attr(node, name, default=None):
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _constants(model):
    """Initializers and Constant-node outputs, as numpy arrays."""
    from onnx import numpy_helper

    values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == 'Constant':
            value = _attr(node, 'value')
            if value is not None:
                values[node.output[0]] = numpy_helper.to_array(value)
    return values


def image_input(model):
    """Name of the graph input that is not a weight (the image)."""
    inits = {t.name for t in model.graph.initializer}
    return [i.name for i in model.graph.input if i.name not in inits][0]


_POINTWISE = {
    'Add', 'Sub', 'Mul', 'Div', 'Relu', 'LeakyRelu', 'PRelu', 'Tanh', 'Sigmoid', 'Clip', 'Pad',
    'InstanceNormalization', 'BatchNormalization', 'Identity', 'Concat', 'QuantizeLinear',
    'DequantizeLinear', 'DynamicQuantizeLinear', 'Cast', 'QLinearAdd', 'QLinearMul',
    'QLinearConcat', 'QLinearLeakyRelu', 'QLinearSigmoid', 'Sqrt', 'Reciprocal', 'Neg', 'Abs',
    'Exp', 'Log', 'Pow', 'Max', 'Min', 'Elu', 'Selu', 'Softplus', 'HardSigmoid', 'Erf', 'Where',
    'Relu6', 'Constant', 'Shape', 'Gather', 'Unsqueeze', 'Squeeze', 'Slice', 'ReduceSum',
    'ReduceMean'}


def receptive_field(model, start=None):
    """``{tensor: (jump, radius)}`` for every tensor computed from ``start`` (default: the image).

    ``jump`` is the number of ``start`` pixels per pixel of the tensor, ``radius`` an upper bound
    of how far (in ``start`` pixels) a pixel of the tensor sees. Raises ``ValueError`` for an op
    whose spatial effect is not known.
    """
    consts = _constants(model)
    info = {start or image_input(model): field.START}
    for node in model.graph.node:
        srcs = [info[n] for n in node.input if n in info]
        if not srcs:
            continue  # not computed from the start tensor
        here = field.merge(srcs)
        op = node.op_type
        if op in ('Conv', 'QLinearConv', 'ConvInteger', 'AveragePool', 'MaxPool',
                  'QLinearAveragePool', 'ConvTranspose'):
            kernel = _attr(node, 'kernel_shape')
            if kernel is None:
                w_index = 3 if op == 'QLinearConv' else 1
                weight = consts.get(node.input[w_index]) if len(node.input) > w_index else None
                if weight is None:
                    raise ValueError('cannot tell the kernel size of %s node %s' % (op, node.name))
                kernel = weight.shape[2:]
            here = field.window(here, kernel, _attr(node, 'strides', [1] * len(kernel)),
                                _attr(node, 'dilations', [1] * len(kernel)),
                                transposed=op == 'ConvTranspose')
        elif op in ('Resize', 'Upsample'):
            scales = None
            for name in node.input[1:]:
                value = consts.get(name)
                if value is not None and value.size == 4 and value.dtype.kind == 'f':
                    scales = value
            if scales is None:
                raise ValueError('cannot tell the scale of %s node %s' % (op, node.name))
            here = field.resize(here, max(scales[2:]))
        elif op not in _POINTWISE:
            raise ValueError('unknown spatial effect of %s node %s' % (op, node.name))
        for out in node.output:
            info[out] = here
    return info


def norm_layers(model):
    """The ``InstanceNormalization`` layers of ``model`` in graph order, as :class:`NormInfo`."""
    consts = _constants(model)
    info = receptive_field(model)
    layers = []
    for node in model.graph.node:
        if node.op_type != 'InstanceNormalization':
            continue
        gamma = consts.get(node.input[1])
        beta = consts.get(node.input[2])
        if gamma is None or beta is None:
            raise ValueError('instance norm %s has non-constant scale or bias' % node.name)
        jump = info[node.input[0]][0]
        if jump < 1 or jump != int(jump):
            raise ValueError('instance norm %s works at a fractional stride %r' % (node.name, jump))
        layers.append(NormInfo(len(layers), node, int(gamma.size), float(_attr(node, 'epsilon', 1e-5)),
                               gamma.astype(np.float64).ravel(), beta.astype(np.float64).ravel(),
                               int(jump)))
    return layers


def _copy(model):
    import onnx

    out = onnx.ModelProto()
    out.CopyFrom(model)
    return out


def _value_info(name, shape, elem=None):
    from onnx import TensorProto, helper

    return helper.make_tensor_value_info(name, elem or TensorProto.FLOAT, shape)


def _drop_unused(m):
    """Remove initializers and graph inputs no node uses (keeps the image input)."""
    used = {name for node in m.graph.node for name in node.input}
    used.update(o.name for o in m.graph.output)
    keep = [t for t in m.graph.initializer if t.name in used]
    del m.graph.initializer[:]
    m.graph.initializer.extend(keep)
    inputs = [i for i in m.graph.input if i.name in used]
    del m.graph.input[:]
    m.graph.input.extend(inputs)
    return m


def stats_model(model):
    """The graph plus, per norm layer, outputs ``norm{i}_mean`` and ``norm{i}_var`` ([1, C, 1, 1]):
    the per-channel mean and (biased) variance of the layer's input, as the layer computes them."""
    from onnx import helper

    m = _copy(model)
    layers = norm_layers(m)
    for layer in layers:
        t, x = layer.tag, layer.input
        m.graph.node.extend([
            helper.make_node('ReduceMean', [x], [t + '_mean'], axes=[2, 3], keepdims=1),
            helper.make_node('Sub', [x, t + '_mean'], [t + '_dev']),
            helper.make_node('Mul', [t + '_dev', t + '_dev'], [t + '_sq']),
            helper.make_node('ReduceMean', [t + '_sq'], [t + '_var'], axes=[2, 3], keepdims=1),
        ])
        m.graph.output.extend([_value_info(t + '_mean', [1, layer.channels, 1, 1]),
                               _value_info(t + '_var', [1, layer.channels, 1, 1])])
    return m


def fixed_model(model):
    """The graph with every instance norm ``i`` replaced by ``X * norm{i}_a + norm{i}_b``
    (graph inputs of shape [1, C, 1, 1])."""
    from onnx import helper

    m = _copy(model)
    layers = iter(norm_layers(m))
    nodes = list(m.graph.node)
    del m.graph.node[:]
    for node in nodes:
        if node.op_type != 'InstanceNormalization':
            m.graph.node.append(node)
            continue
        layer = next(layers)
        t = layer.tag
        m.graph.node.extend([helper.make_node('Mul', [node.input[0], t + '_a'], [t + '_scaled']),
                             helper.make_node('Add', [t + '_scaled', t + '_b'], [node.output[0]])])
        m.graph.input.extend([_value_info(t + '_a', [1, layer.channels, 1, 1]),
                              _value_info(t + '_b', [1, layer.channels, 1, 1])])
    return _drop_unused(m)


def cut_tensors(model):
    """Tensors that separate the image from the output, in graph order.

    Walking the (topologically sorted) nodes, a tensor is a cut when right after it is produced it
    is the only tensor computed from the image that a later node still needs.
    """
    consts = _constants(model)
    start = image_input(model)
    nodes = list(model.graph.node)
    last_use = {}
    for i, node in enumerate(nodes):
        for name in node.input:
            last_use[name] = i
    outputs = {o.name for o in model.graph.output}
    for name in outputs:
        last_use[name] = len(nodes)
    data = {start}
    live = {start}
    cuts = []
    for i, node in enumerate(nodes):
        if not any(n in data for n in node.input):
            continue
        for out in node.output:
            if out not in consts:
                data.add(out)
                live.add(out)
        live = {t for t in live if last_use.get(t, -1) > i}
        if len(live) == 1 and len(node.output) == 1 and node.output[0] in live:
            cuts.append(node.output[0])
    return [c for c in cuts if c not in outputs]


def stage_model(fixed, start, end, moments_of=None, start_type=None, end_type=None):
    """The sub-graph of the fixed model from tensor ``start`` (a graph input) to tensor ``end``.

    With ``moments_of`` (a :class:`NormInfo`), the graph instead ends at that norm's input ``X``
    and outputs ``moment_s1`` = sum(X * mask) and ``moment_m2`` = sum(((X - tile mean) * mask)**2)
    per channel ([C]), with ``moment_mask`` ([1, 1, h, w], 0/1, at the norm's resolution) an input.
    """
    from onnx import TensorProto, helper, numpy_helper

    m = _copy(fixed)
    nodes = list(m.graph.node)
    extra = []
    if moments_of is not None:
        x = moments_of.input
        extra = [
            helper.make_node('Mul', [x, 'moment_mask'], ['moment_masked']),
            helper.make_node('ReduceSum', ['moment_masked', 'moment_axes'], ['moment_s1k'], keepdims=1),
            helper.make_node('ReduceSum', ['moment_mask'], ['moment_count'], keepdims=1),
            helper.make_node('Div', ['moment_s1k', 'moment_count'], ['moment_tile_mean']),
            helper.make_node('Sub', [x, 'moment_tile_mean'], ['moment_dev']),
            helper.make_node('Mul', ['moment_dev', 'moment_mask'], ['moment_mdev']),
            helper.make_node('Mul', ['moment_mdev', 'moment_mdev'], ['moment_sq']),
            helper.make_node('ReduceSum', ['moment_sq', 'moment_axes'], ['moment_m2'], keepdims=0),
            helper.make_node('ReduceSum', ['moment_masked', 'moment_axes'], ['moment_s1'], keepdims=0),
        ]
        m.graph.initializer.append(numpy_helper.from_array(np.array([0, 2, 3], np.int64), 'moment_axes'))
        outputs = [_value_info('moment_s1', [moments_of.channels]),
                   _value_info('moment_m2', [moments_of.channels])]
        end = None
    else:
        outputs = [_value_info(end, None, end_type)]
    wanted = {o.name for o in outputs}
    # keep the nodes needed for the outputs, stopping at the start tensor
    needed = set(wanted)
    keep = []
    for node in reversed(nodes + extra):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(n for n in node.input if n != start)
    keep.reverse()
    del m.graph.node[:]
    m.graph.node.extend(keep)
    del m.graph.output[:]
    m.graph.output.extend(outputs)
    if start != image_input(fixed):
        # a feature map: rank 4 declared (OpenVINO's converter needs the rank), sizes left free
        m.graph.input.insert(0, _value_info(start, [None] * 4, start_type or TensorProto.FLOAT))
    if moments_of is not None:
        m.graph.input.append(_value_info('moment_mask', [1, 1, None, None]))
    _drop_unused(m)
    return m
