"""The generators' training formulation (mxstyle.models.layers.training_formulation).

The training graph traces InstanceNorm as a BatchNorm over the (1, N*C, H, W) view and pads the
RGB output conv to vector-friendly shapes. These tests check that this is the same function with
the same parameters: same outputs and gradients as MXNet's own layers, unchanged parameter names,
and an exported generator that still holds real InstanceNorm ops.
"""
import json

import numpy as np
import pytest
from float_noise import nudged

mx = pytest.importorskip('mxnet')

from mxnet import autograd  # noqa: E402
from mxnet.gluon import nn  # noqa: E402

from mxstyle.models import get_model, layers, list_models  # noqa: E402
from mxstyle.training.graph import build_training_graph, default_train_config  # noqa: E402

pytestmark = pytest.mark.filterwarnings('ignore:Please import `csr_matrix`:DeprecationWarning')

# every registered generator
MODELS = list_models()


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


def _output_and_grads(name, fast, hybridize, nudge=False):
    """Output and parameter gradients of generator ``name`` on fixed images.

    ``nudge=True`` moves every input pixel by one float32 ulp (a fixed random sign each): the
    reference computed on that input shows how far float32 rounding alone can move the result
    of this very computation on this CPU (kernels and summation orders differ between AVX2 and
    AVX-512, and oneDNN picks its algorithms per machine).
    """
    net = _generator(name)
    block = _Wrapper(net, fast)
    if hybridize:
        block.hybridize(static_alloc=True, static_shape=True)
    x = _images()
    if nudge:
        x = mx.nd.array(nudged(x.asnumpy()))
    weights = mx.nd.array(np.random.RandomState(1).randn(*x.shape).astype(np.float32))
    with autograd.record():  # training mode: BatchNorm normalizes with batch statistics
        y = block(x)
        loss = (y * weights).sum()
    loss.backward()
    grads = {k: p.grad().asnumpy() for k, p in net.collect_params().items() if p.grad_req != 'null'}
    return y.asnumpy(), grads


# How many times the rounding noise of the reference itself a difference may be. Measured: the
# training formulation differs from MXNet's layers by 0.5-0.8x that noise (AVX-512 and AVX2),
# while a real error (a gradient that does not flow, a wrong normalization) is many times it.
NOISE_FACTOR = 4.0


def _worst_excess(test, ref, nudged):
    """Largest ratio, over the whole gradient and each parameter, of ``|test - ref|`` to the
    allowed difference: ``NOISE_FACTOR`` times ``|nudged - ref|`` (L2 norms), plus 1e-6 of the
    whole gradient's norm for tensors whose rounding noise happens to be tiny. A value above 1
    fails."""
    keys = sorted(ref)
    flat = {name: np.concatenate([g[k].ravel() for k in keys]) for name, g in
            (('test', test), ('ref', ref), ('nudged', nudged))}
    floor = 1e-6 * np.linalg.norm(flat['ref'])
    pairs = [(flat['test'], flat['ref'], flat['nudged'])]
    pairs += [(test[k], ref[k], nudged[k]) for k in keys]
    return max(np.linalg.norm(t - r) / (NOISE_FACTOR * np.linalg.norm(n - r) + floor)
               for t, r, n in pairs)


@pytest.mark.parametrize('hybridize', [True, False], ids=['hybridized', 'imperative'])
@pytest.mark.parametrize('name', MODELS)
def test_same_output_and_gradients_as_mxnet_layers(name, hybridize):
    y_ref, g_ref = _output_and_grads(name, fast=False, hybridize=hybridize)
    y_nudged, g_nudged = _output_and_grads(name, fast=False, hybridize=hybridize, nudge=True)
    y_fast, g_fast = _output_and_grads(name, fast=True, hybridize=hybridize)
    assert g_fast.keys() == g_ref.keys()
    # outputs lie in [0, 255]; the float32 noise of a 0-255 output is at least 255 * 2^-23 * 16
    output_noise = max(np.abs(y_nudged - y_ref).max(), 255.0 * 2.0 ** -19)
    assert np.abs(y_fast - y_ref).max() <= NOISE_FACTOR * output_noise
    assert _worst_excess(g_fast, g_ref, g_nudged) <= 1.0



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
