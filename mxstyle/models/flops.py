"""Cost of a generator: FLOPs counted on its symbol graph, and parameters.

Convention: a multiply-add counts as **2 FLOPs**; only Convolution, Deconvolution and
FullyConnected are counted (bias additions, normalization, activations, padding, pooling and
upsampling are ignored; they are below 1% for the networks here).
With this convention ``johnson`` costs 307.6 kFLOP per output pixel.
"""

import json

import numpy as np
import mxnet as mx

__all__ = ['count_flops', 'count_params', 'layer_flops']


def _symbol(net):
    data = mx.sym.var('data')
    out = net(data)
    if isinstance(out, (list, tuple)):
        out = mx.sym.Group(list(out))
    return out


def layer_flops(net, height, width, batch=1):
    """``[(node name, op, FLOPs)]`` of every counted layer, for an input ``(batch, 3, H, W)``."""
    sym = _symbol(net)
    shape = (int(batch), 3, int(height), int(width))
    arg_shapes, _, _ = sym.infer_shape(data=shape)
    args = dict(zip(sym.list_arguments(), arg_shapes))
    internals = sym.get_internals()
    _, out_shapes, _ = internals.infer_shape(data=shape)
    outs = dict(zip(internals.list_outputs(), out_shapes))

    nodes = json.loads(sym.tojson())['nodes']
    result = []
    for node in nodes:
        op = node['op']
        if op not in ('Convolution', 'Deconvolution', 'FullyConnected'):
            continue
        weight = nodes[node['inputs'][1][0]]['name']
        wshape = args[weight]
        out_shape = outs[node['name'] + '_output']
        if op == 'Convolution':
            # every output element: C_in/groups * kh * kw multiply-adds
            macs = int(np.prod(out_shape)) * int(np.prod(wshape[1:]))
        elif op == 'Deconvolution':
            # every input element is scattered through C_out/groups * kh * kw weights
            in_shape = outs[_input_name(nodes, node)]
            macs = int(np.prod(in_shape)) * int(np.prod(wshape[1:]))
        else:
            macs = int(np.prod(out_shape)) * int(wshape[1])
        result.append((node['name'], op, 2 * macs))
    return result


def _input_name(nodes, node):
    src, idx = node['inputs'][0][0], node['inputs'][0][1]
    src_node = nodes[src]
    if src_node['op'] == 'null':
        return src_node['name']
    return '%s_output%s' % (src_node['name'], idx if idx else '')


def count_flops(net, height, width):
    """FLOPs of one forward pass of ``net`` on one ``3 x height x width`` image.

    Counts multiply-adds of Convolution / Deconvolution / FullyConnected as 2 FLOPs each, from
    the shapes inferred on the symbol graph ``net(mx.sym.var('data'))``; the network does not
    need to be initialized. Divide by ``height * width`` for FLOPs per pixel.
    """
    return sum(f for _, _, f in layer_flops(net, height, width))


def count_params(net):
    """Number of scalar parameters of ``net`` (initialized or not: shapes are known up front)."""
    total = 0
    for p in net.collect_params().values():
        if p.shape is None or any(int(d) <= 0 for d in p.shape):
            raise ValueError('parameter %s has an unknown shape %r; give in_channels'
                             % (p.name, p.shape))
        total += int(np.prod(p.shape))
    return total
