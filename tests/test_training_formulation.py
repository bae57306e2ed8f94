"""The generators' training formulation (mxstyle.models.layers.training_formulation).

The training graph traces InstanceNorm as a BatchNorm over the (1, N*C, H, W) view and pads the
RGB output conv to vector-friendly shapes. These tests check that this is the same function with
the same parameters: same outputs and gradients as MXNet's own layers, unchanged parameter names,
and an exported generator that still holds real InstanceNorm ops.
"""
import json

import numpy as np
import pytest

mx = pytest.importorskip('mxnet')

from mxnet import autograd  # noqa: E402
from mxnet.gluon import nn  # noqa: E402

from mxstyle.models import get_model, layers, list_models  # noqa: E402
from mxstyle.training.graph import build_training_graph, default_train_config  # noqa: E402

pytestmark = pytest.mark.filterwarnings('ignore:Please import `csr_matrix`:DeprecationWarning')

# the built-in generators (other test modules register throw-away ones)
MODELS = [name for name in ('johnson', 'johnson_lite', 'texture_net') if name in list_models()]


def _generator(name, seed=0):
    mx.random.seed(seed)
    net = get_model(name)
    net.initialize(mx.init.Xavier(magnitude=2.0))
    # non-trivial affine parameters, so that gamma and beta take part in the comparison
    rng = np.random.RandomState(seed)
    for key, param in net.collect_params().items():
        if key.endswith('_gamma') or key.endswith('_beta'):
            base = 1.0 if key.endswith('_gamma') else 0.0
            param.set_data(mx.nd.array(base + 0.2 * rng.randn(*param.shape)))
    return net


def _images(n=2, size=64, seed=0):
    rng = np.random.RandomState(seed)
    return mx.nd.array(rng.uniform(0, 255, (n, 3, size, size)).astype(np.float32))


class _Wrapper(nn.HybridBlock):
    """A parent that traces its generator in the training formulation (as TrainingGraph does)."""

    def __init__(self, generator, fast, **kwargs):
        super().__init__(**kwargs)
        self.fast = fast
        with self.name_scope():
            self.generator = generator
            self.scratch = layers.NormScratch(2)

    def hybrid_forward(self, F, x):
        if not self.fast:
            return self.generator(x)
        with layers.training_formulation(self.scratch):
            return self.generator(x)


def _output_and_grads(name, fast, hybridize):
    net = _generator(name)
    block = _Wrapper(net, fast)
    if hybridize:
        block.hybridize(static_alloc=True, static_shape=True)
    x = _images()
    weights = mx.nd.array(np.random.RandomState(1).randn(*x.shape).astype(np.float32))
    with autograd.record():  # training mode: BatchNorm normalizes with batch statistics
        y = block(x)
        loss = (y * weights).sum()
    loss.backward()
    grads = {k: p.grad().asnumpy() for k, p in net.collect_params().items() if p.grad_req != 'null'}
    return y.asnumpy(), grads


@pytest.mark.parametrize('hybridize', [True, False], ids=['hybridized', 'imperative'])
@pytest.mark.parametrize('name', MODELS)
def test_same_output_and_gradients_as_mxnet_layers(name, hybridize):
    y_ref, g_ref = _output_and_grads(name, fast=False, hybridize=hybridize)
    y_fast, g_fast = _output_and_grads(name, fast=True, hybridize=hybridize)
    # outputs lie in [0, 255]: the same to 1e-4 of that range
    np.testing.assert_allclose(y_fast / 255.0, y_ref / 255.0, rtol=0, atol=1e-4)
    assert g_fast.keys() == g_ref.keys()
    flat_ref = np.concatenate([g_ref[k].ravel() for k in sorted(g_ref)])
    flat_fast = np.concatenate([g_fast[k].ravel() for k in sorted(g_ref)])
    cosine = flat_fast @ flat_ref / (np.linalg.norm(flat_fast) * np.linalg.norm(flat_ref))
    assert cosine > 1 - 1e-6
    # Compared against the largest gradient: a conv bias right before an instance norm has a zero
    # gradient in exact arithmetic (its computed value is rounding noise). texture_net normalizes
    # 2x2 maps and is ill-conditioned at initialization: a 1e-6 relative change of its input moves
    # its gradients by 5e-2 of the largest one, so float rounding alone gives about 5e-4 there.
    scale = max(np.abs(g).max() for g in g_ref.values())
    tolerance = 2e-3 if name == 'texture_net' else 1e-5
    for key in g_ref:
        np.testing.assert_allclose(g_fast[key], g_ref[key], rtol=1e-3, atol=tolerance * scale, err_msg=key)


@pytest.mark.parametrize('name', MODELS)
def test_parameter_names_and_shapes_are_those_of_the_gluon_layers(name, monkeypatch):
    ours = {k: p.shape for k, p in get_model(name).collect_params().items()}
    monkeypatch.setattr(layers, 'Conv2D', nn.Conv2D)
    monkeypatch.setattr(layers, 'InstanceNorm', nn.InstanceNorm)
    gluons = {k: p.shape for k, p in get_model(name).collect_params().items()}
    assert list(ours.items()) == list(gluons.items())


def _ops(symbol):
    return {node['op'] for node in json.loads(symbol.tojson())['nodes']}


def test_the_switch_is_off_outside_the_training_graph():
    net = _generator('johnson_lite')
    graph, loss = build_training_graph(net, default_train_config(), vgg_weights=None)
    grams = loss.style_targets(_images(1, 64))
    with autograd.record():
        out = graph(_images(), *grams)
    out[0].backward()
    # the generator on its own (previews, export, ONNX) still uses MXNet's InstanceNorm
    ops = _ops(net(mx.sym.var('data')))
    assert 'InstanceNorm' in ops and 'BatchNorm' not in ops
    assert layers._training_scratch() is None
    # and the scratch buffers are not generator parameters (not trained, not saved)
    assert not any('normscratch' in k for k in net.collect_params().keys())


def test_the_training_formulation_is_in_the_traced_graph():
    net = _generator('johnson_lite')
    scratch = layers.NormScratch(2)
    with layers.training_formulation(scratch):
        ops = _ops(net(mx.sym.var('data')))
    assert 'BatchNorm' in ops and 'InstanceNorm' not in ops


def test_training_graph_handles_a_new_batch_size_and_predict_mode():
    net = _generator('johnson_lite')
    graph, loss = build_training_graph(net, default_train_config(), vgg_weights=None)
    grams = loss.style_targets(_images(1, 64))
    for n in (2, 3, 2):
        x = _images(n, seed=n)
        with autograd.record():
            recorded = [o.asnumpy() for o in graph(x, *grams)]
        predicted = [o.asnumpy() for o in graph(x, *grams)]  # not recording, predict mode
        for a, b in zip(recorded, predicted):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-5)
        assert recorded[-1].shape == (n, 3, 64, 64)
        # against the graph with MXNet's own layers
        ref_graph, _ = build_training_graph(net, default_train_config(), vgg_weights=None,
                                            fast_layers=False)
        ref_graph.loss = graph.loss  # same (random) VGG weights
        reference = [o.asnumpy() for o in ref_graph(x, *grams)]
        for a, b in zip(recorded[:5], reference[:5]):
            np.testing.assert_allclose(a, b, rtol=1e-5)


def test_conv2d_training_formulation_pads_channels_and_borders():
    mx.random.seed(0)
    conv = layers.Conv2D(3, 9, in_channels=16)
    conv.initialize(mx.init.Xavier())
    x = mx.nd.array(np.random.RandomState(0).uniform(-1, 1, (2, 16, 32, 32)).astype(np.float32))
    x.attach_grad()
    results = []
    for fast in (False, True):
        with autograd.record():
            if fast:
                with layers.training_formulation(layers.NormScratch(2)):
                    y = conv(x)
            else:
                y = conv(x)
        y.backward(mx.nd.ones_like(y) * 0.01)
        results.append((y.asnumpy(), x.grad.asnumpy().copy(), conv.weight.grad().asnumpy().copy(),
                        conv.bias.grad().asnumpy().copy()))
    assert results[1][0].shape == (2, 3, 24, 24)
    for ref, fast in zip(*results):
        np.testing.assert_allclose(fast, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
