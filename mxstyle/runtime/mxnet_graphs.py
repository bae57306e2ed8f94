"""MXNet symbol analysis and surgery for tiled inference: the MXNet counterpart of
:mod:`mxstyle.runtime.onnx_graphs` (see there for why tiling needs it).

``graph`` is a symbol's JSON (``json.loads`` of the ``-symbol.json`` file), ``sym`` the loaded
symbol. What is here: :func:`receptive_field`, :func:`norm_layers`, :func:`stats_symbol`,
:func:`fixed_symbol` and :func:`moments_symbol` (the per-channel masked moments of one norm's
input, as in :func:`mxstyle.runtime.onnx_graphs.stage_model`). There are no stages: MXNet runs
the whole fixed-statistics graph as one.
"""

import json

import numpy as np

from . import receptive_field as field

__all__ = ['MXNorm', 'receptive_field', 'norm_layers', 'stats_symbol', 'fixed_symbol',
           'moments_symbol']


class MXNorm:
    """An instance-norm layer of an MXNet symbol graph (the fields of onnx_graphs.NormInfo, with
    ``node_index`` instead of tensor names)."""

    def __init__(self, index, node_index, channels, eps, gamma, beta, jump):
        self.index, self.node_index = index, node_index
        self.channels, self.eps, self.gamma, self.beta, self.jump = channels, eps, gamma, beta, jump

    @property
    def tag(self):
        return 'norm%d' % self.index


def _attrs(node):
    return node.get('attrs') or node.get('attr') or node.get('param') or {}


def _tuple_attr(text, default):
    if text is None:
        return default
    return tuple(int(v) for v in str(text).strip('()[] ').split(',') if v.strip() and v.strip() != 'None')


def _kernel_stride(node):
    """Kernel, stride and dilation of a convolution-like MXNet node (also inside subgraphs)."""
    attrs = _attrs(node)
    if 'kernel' in attrs:
        if attrs.get('global_pool') in ('True', 'true', '1'):
            raise ValueError('global pooling in %s' % node['name'])
        kernel = _tuple_attr(attrs['kernel'], (1, 1))
        stride = _tuple_attr(attrs.get('stride'), (1,) * len(kernel)) or (1,) * len(kernel)
        dilate = _tuple_attr(attrs.get('dilate'), (1,) * len(kernel)) or (1,) * len(kernel)
        return kernel, stride, dilate, node['op'] == 'Deconvolution'
    for sub in node.get('subgraphs', []):
        for inner in sub.get('nodes', []):
            found = _kernel_stride(inner)
            if found is not None:
                return found
    return None


def receptive_field(graph, input_name='data'):
    """``{node index: (jump, radius)}`` for every node computed from ``input_name`` (see
    :func:`mxstyle.runtime.onnx_graphs.receptive_field`; unknown ops count as pointwise)."""
    info = {}
    for idx, node in enumerate(graph['nodes']):
        if node['op'] == 'null':
            if node['name'] == input_name:
                info[idx] = field.START
            continue
        srcs = [info[i[0]] for i in node['inputs'] if i[0] in info]
        if not srcs:
            continue
        here = field.merge(srcs)
        ks = _kernel_stride(node)
        if node['op'] in ('UpSampling', '_contrib_BilinearResize2D'):
            here = field.resize(here, _attrs(node).get('scale', 2))
        elif ks is not None:
            kernel, stride, dilate, transposed = ks
            here = field.window(here, kernel, stride, dilate, transposed=transposed)
        info[idx] = here
    return info


def norm_layers(graph, params, input_name='data'):
    """The ``InstanceNorm`` nodes of ``graph`` in graph order, as :class:`MXNorm` (``params``:
    name -> NDArray)."""
    nodes = graph['nodes']
    info = receptive_field(graph, input_name)
    norms = []
    for idx, node in enumerate(nodes):
        if node['op'] != 'InstanceNorm':
            continue
        gamma = params[nodes[node['inputs'][1][0]]['name']].asnumpy().astype(np.float64)
        beta = params[nodes[node['inputs'][2][0]]['name']].asnumpy().astype(np.float64)
        jump = info[node['inputs'][0][0]][0]
        if jump < 1 or jump != int(jump):
            raise ValueError('instance norm %s at a fractional stride' % node['name'])
        norms.append(MXNorm(len(norms), idx, gamma.size, float(_attrs(node).get('eps', 1e-3)),
                            gamma.ravel(), beta.ravel(), int(jump)))
    return norms


def _out_name(graph, entry):
    node = graph['nodes'][entry[0]]
    if node['op'] == 'null':
        return node['name']
    return node['name'] + '_output' + (str(entry[1]) if entry[1] else '')


def _norm_input(sym, graph, norm):
    entry = graph['nodes'][norm.node_index]['inputs'][0]
    return sym.get_internals()[_out_name(graph, entry)]


def stats_symbol(sym, graph, norms):
    """``sym``'s output, then per norm the mean and (biased) variance of its input ([1, C, 1, 1])."""
    import mxnet as mx

    outs = [sym]
    for norm in norms:
        x = _norm_input(sym, graph, norm)
        mean = mx.sym.mean(x, axis=(2, 3), keepdims=True)
        var = mx.sym.mean(mx.sym.square(mx.sym.broadcast_sub(x, mean)), axis=(2, 3), keepdims=True)
        outs += [mean, var]
    return mx.sym.Group(outs)


def fixed_symbol(graph, norms):
    """JSON surgery: every InstanceNorm -> broadcast_add(broadcast_mul(x, a), b), with ``a`` and
    ``b`` the inputs ``norm{i}_a`` and ``norm{i}_b``."""
    import mxnet as mx

    old = graph['nodes']
    new, remap = [], {}

    def add(node):
        new.append(node)
        return len(new) - 1

    by_index = {norm.node_index: norm for norm in norms}
    for idx, node in enumerate(old):
        node = dict(node)
        node['inputs'] = [[remap[i[0]], i[1], 0] for i in node['inputs']]
        norm = by_index.get(idx)
        if norm is None:
            remap[idx] = add(node)
            continue
        a = add({'op': 'null', 'name': norm.tag + '_a', 'inputs': []})
        b = add({'op': 'null', 'name': norm.tag + '_b', 'inputs': []})
        mul = add({'op': 'broadcast_mul', 'name': node['name'] + '_fixmul',
                   'inputs': [node['inputs'][0], [a, 0, 0]]})
        remap[idx] = add({'op': 'broadcast_add', 'name': node['name'],
                          'inputs': [[mul, 0, 0], [b, 0, 0]]})
    fixed = {'nodes': new, 'arg_nodes': [i for i, n in enumerate(new) if n['op'] == 'null'],
             'heads': [[remap[h[0]], h[1], 0] for h in graph['heads']],
             'attrs': graph.get('attrs', {})}
    return mx.sym.load_json(json.dumps(fixed))


def moments_symbol(fixed, graph, norm):
    """From the fixed symbol: ``sum(X * mask)`` and ``sum(((X - tile mean) * mask)**2)`` per channel
    ([C]) of ``norm``'s input ``X``, with ``moment_mask`` ([1, 1, h, w], 0/1) an input."""
    import mxnet as mx

    x = _norm_input(fixed, graph, norm)
    mask = mx.sym.var('moment_mask')
    masked = mx.sym.broadcast_mul(x, mask)
    s1 = mx.sym.sum(masked, axis=(0, 2, 3), keepdims=True)
    tile_mean = mx.sym.broadcast_div(s1, mx.sym.sum(mask))
    dev = mx.sym.broadcast_mul(mx.sym.broadcast_sub(x, tile_mean), mask)
    m2 = mx.sym.sum(mx.sym.square(dev), axis=(0, 2, 3))
    return mx.sym.Group([mx.sym.reshape(s1, shape=(-1,)), m2])
