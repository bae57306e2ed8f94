"""Tests of the generator registry (mxstyle.models), parametrized over every registered model."""

import os
import warnings

import numpy as np
import pytest
from float_noise import allowed, output_noise

mx = pytest.importorskip('mxnet')

from mxstyle.errors import ConfigError, MxstyleError  # noqa: E402
from mxstyle.models import (check_input_shape, count_flops, count_params, get_model,  # noqa: E402
                            is_model, layer_flops, list_models, register_model)

# mx.nd.array(numpy) touches the deprecated scipy.sparse.csr namespace: not ours to fix.
pytestmark = pytest.mark.filterwarnings('ignore:Please import `csr_matrix`:DeprecationWarning')

MODELS = list_models()
SIZES = [(64, 64), (64, 96)]     # multiples of every model's stride (32 for texture_net)


def _build(name, hybridize=False, seed=0, **kwargs):
    mx.random.seed(seed)
    net = get_model(name, **kwargs)
    net.initialize(mx.init.Xavier())
    if hybridize:
        net.hybridize()
    return net


def _image(h, w, seed=0, batch=1):
    rng = np.random.RandomState(seed)
    return mx.nd.array(rng.uniform(0, 255, (batch, 3, h, w)).astype(np.float32))


# --------------------------------------------------------------------------------------- registry

def test_registry_lists_models_sorted():
    assert MODELS == sorted(MODELS)
    assert {'johnson', 'johnson_lite', 'johnson_s8', 'texture_net'} <= set(MODELS)
    assert all(is_model(n) for n in MODELS)
    assert not is_model('no_such_net')


def test_unknown_name_raises_config_error_listing_valid_names():
    with pytest.raises(ConfigError) as info:
        get_model('no_such_net')
    msg = str(info.value)
    assert 'no_such_net' in msg
    for name in MODELS:
        assert name in msg
    assert isinstance(info.value, MxstyleError) and isinstance(info.value, ValueError)


def test_decoder_blocks_need_a_decoder_stage_below_full_resolution():
    from mxstyle.models.johnson import JohnsonNet

    with pytest.raises(ValueError, match="decoder_blocks=1"):
        JohnsonNet(channels=(8, 16), res_blocks=1, outer_kernel=3, decoder_blocks=1)
    with pytest.raises(ValueError, match="decoder_blocks=-1"):
        JohnsonNet(channels=(8, 16, 32), res_blocks=1, outer_kernel=3, decoder_blocks=-1)


def test_register_model_decorator_rejects_a_second_function_under_one_name():
    with pytest.raises(ValueError):
        @register_model(name='johnson')
        def johnson():  # pragma: no cover - never called
            return None


def test_spec_override_through_get_model():
    small = get_model('johnson', res_blocks=1)
    assert small.arch == 'johnson'
    assert count_params(small) < count_params(get_model('johnson'))


# --------------------------------------------------------------------------------------- per model

@pytest.mark.parametrize('name', MODELS)
def test_attributes(name):
    net = get_model(name)
    assert isinstance(net, mx.gluon.HybridBlock)
    assert net.arch == name
    assert isinstance(net.stride, int) and net.stride >= 1
    for h, w in SIZES:
        assert h % net.stride == 0 and w % net.stride == 0
        check_input_shape(net, h, w)
    # every parameter shape is known at construction (no deferred initialization)
    for p in net.collect_params().values():
        assert p.shape is not None and all(d > 0 for d in p.shape), p.name


@pytest.mark.parametrize('name', MODELS)
def test_shape_range_and_hybridize(name):
    net = _build(name)
    for h, w in SIZES:
        x = _image(h, w)
        y = net(x)
        assert y.shape == x.shape
        assert y.dtype == np.float32
        y = y.asnumpy()
        assert np.isfinite(y).all()
        assert y.min() >= 0.0 and y.max() <= 255.0
    x = _image(64, 96, seed=1)
    y_imperative = net(x).asnumpy()
    noise = output_noise(lambda a: net(mx.nd.array(a)).asnumpy(), x.asnumpy())
    net.hybridize()
    y_hybrid = net(x).asnumpy()
    np.testing.assert_allclose(y_hybrid, y_imperative, rtol=0, atol=allowed(noise))
    # batch > 1 works and images are independent (instance norm, no batch statistics)
    xb = mx.nd.concat(x, _image(64, 96, seed=2), dim=0)
    yb = net(xb).asnumpy()
    np.testing.assert_allclose(yb[:1], y_hybrid, rtol=0, atol=allowed(noise))


@pytest.mark.parametrize('name', MODELS)
def test_parameter_names_are_stable(name):
    a = get_model(name).collect_params().keys()
    b = get_model(name).collect_params().keys()
    assert list(a) == list(b)
    assert all(k.startswith(name + '_') for k in a)


@pytest.mark.parametrize('name', MODELS)
def test_save_load_parameters(name, tmp_path):
    net = _build(name, seed=1)
    path = str(tmp_path / 'net.params')
    net.save_parameters(path)
    other = get_model(name)
    other.load_parameters(path)
    x = _image(64, 64)
    np.testing.assert_array_equal(other(x).asnumpy(), net(x).asnumpy())


@pytest.mark.parametrize('name', MODELS)
def test_export_and_symbolblock_imports(name, tmp_path):
    net = _build(name, hybridize=True)
    x = _image(64, 96)
    y = net(x).asnumpy()
    prefix = str(tmp_path / name)
    net.export(prefix)
    sym_file, params_file = prefix + '-symbol.json', prefix + '-0000.params'
    assert os.path.isfile(sym_file) and os.path.isfile(params_file)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')   # "Cannot decide type for ... data": harmless
        block = mx.gluon.SymbolBlock.imports(sym_file, ['data'], params_file)
    noise = output_noise(lambda a: net(mx.nd.array(a)).asnumpy(), x.asnumpy())
    np.testing.assert_allclose(block(x).asnumpy(), y, rtol=0, atol=allowed(noise))


def _strip_initializer_inputs(model):
    """mx.onnx lists every weight as a graph input too; keep them only as initializers."""
    inits = {t.name for t in model.graph.initializer}
    keep = [i for i in model.graph.input if i.name not in inits]
    del model.graph.input[:]
    model.graph.input.extend(keep)
    return model


@pytest.mark.filterwarnings('ignore:.*mapping.*:DeprecationWarning')   # mx.onnx on onnx 1.18
@pytest.mark.parametrize('name', MODELS)
def test_onnx_export_runs_in_onnxruntime(name, tmp_path):
    onnx = pytest.importorskip('onnx')
    ort = pytest.importorskip('onnxruntime')
    net = _build(name, hybridize=True)
    h, w = SIZES[1]
    x = _image(h, w)
    net(x)
    prefix = str(tmp_path / name)
    net.export(prefix)
    onnx_file = str(tmp_path / (name + '.onnx'))
    mx.onnx.export_model(prefix + '-symbol.json', prefix + '-0000.params',
                         in_shapes=[(1, 3, h, w)], in_types=[np.float32],
                         onnx_file_path=onnx_file, dynamic=True,
                         dynamic_input_shapes=[(1, 3, None, None)])
    model = _strip_initializer_inputs(onnx.load(onnx_file))
    onnx.checker.check_model(model)
    ops = {n.op_type for n in model.graph.node}
    assert 'Resize' not in ops or all(
        a.s == b'nearest' for n in model.graph.node if n.op_type == 'Resize'
        for a in n.attribute if a.name == 'mode')
    sess = ort.InferenceSession(model.SerializeToString(), providers=['CPUExecutionProvider'])
    (inp,) = sess.get_inputs()
    assert inp.name == 'data'
    # dynamic H, W: the exported size and another size both match MXNet on the 0-255 scale
    for hh, ww in [(h, w), (96, 64)]:
        xx = _image(hh, ww, seed=3)
        got = sess.run(None, {'data': xx.asnumpy()})[0]
        want = net(xx).asnumpy()
        assert got.shape == want.shape == (1, 3, hh, ww)
        noise = max(output_noise(lambda a: sess.run(None, {'data': a})[0], xx.asnumpy()),
                    output_noise(lambda a: net(mx.nd.array(a)).asnumpy(), xx.asnumpy()))
        assert np.abs(got - want).max() <= allowed(noise, floor=1e-4), (hh, ww, np.abs(got - want).max(), noise)


# --------------------------------------------------------------------------------------- shapes

@pytest.mark.parametrize('name', MODELS)
def test_check_input_shape(name):
    net = get_model(name)
    s = net.stride
    check_input_shape(net, 4 * s, 6 * s)
    with pytest.raises(ConfigError, match='multiples of %d' % s):
        check_input_shape(net, 4 * s + 1, 4 * s)
    with pytest.raises(ConfigError, match='multiples of %d' % s):
        check_input_shape(net, 4 * s, 4 * s + 2)
    with pytest.raises(ConfigError, match='at least'):
        check_input_shape(net, s, s)
    with pytest.raises(ConfigError):
        check_input_shape(net, 'big', 64)


# --------------------------------------------------------------------------------------- cost

def test_johnson_cost_matches_design():
    """docs/design.md: ``johnson`` is 307.6 kFLOP per pixel and 1.68 M parameters.

    count_flops counts a conv multiply-add as 2 FLOPs (bias, norm, activations not counted).
    """
    net = get_model('johnson')
    per_pixel = count_flops(net, 64, 96) / (64 * 96)
    assert per_pixel == pytest.approx(307584, rel=1e-9)
    assert count_params(net) == pytest.approx(1.68e6, rel=0.01)


def test_johnson_lite_is_about_4x_cheaper():
    full = count_flops(get_model('johnson'), 64, 64)
    lite = count_flops(get_model('johnson_lite'), 64, 64)
    assert 3.5 < full / lite < 5.0


def test_skips_are_two_additions_on_johnson_s8s_parameters(tmp_path):
    """johnson_s8_skip has johnson_s8's parameters and cost, and two more additions in its graph
    (at 1/4 and 1/2 resolution), which change the output for the same weights."""
    import json

    plain, skip = get_model('johnson_s8'), get_model('johnson_s8_skip')
    plain.initialize(mx.init.Xavier(magnitude=2.0))
    plain.save_parameters(str(tmp_path / 'w.params'))
    skip.load_parameters(str(tmp_path / 'w.params'))
    assert count_flops(plain, 64, 64) == count_flops(skip, 64, 64)
    x = mx.nd.array(np.random.RandomState(0).uniform(0, 255, (1, 3, 64, 96)))
    assert np.abs(plain(x).asnumpy() - skip(x).asnumpy()).max() > 1.0

    def additions(net):
        nodes = json.loads(net(mx.sym.var('data')).tojson())['nodes']
        return [n['name'] for n in nodes if n['op'] in ('elemwise_add', '_Plus', 'broadcast_add', '_plus')]
    assert len(additions(plain)) == 3  # the residual blocks
    assert len(additions(skip)) == 5


@pytest.mark.parametrize('name', MODELS)
def test_count_flops_scales_with_pixels(name):
    net = get_model(name)
    s = max(net.stride, 4)
    a = count_flops(net, 4 * s, 4 * s)
    b = count_flops(net, 8 * s, 12 * s)
    assert a > 0 and b == 6 * a
    layers = layer_flops(net, 4 * s, 4 * s)
    assert layers and all(op == 'Convolution' for _, op, _ in layers)
    assert sum(f for _, _, f in layers) == a


@pytest.mark.parametrize('name', MODELS)
def test_count_params_matches_initialized_arrays(name):
    net = _build(name)
    n = sum(p.data().size for p in net.collect_params().values())
    assert count_params(net) == n


# --------------------------------------------------------------------------------------- texture net

def test_texture_net_stride_follows_scales():
    assert get_model('texture_net').stride == 32
    assert get_model('texture_net', scales=5).stride == 16


def test_texture_net_noise_is_optional():
    det = _build('texture_net')
    x = _image(64, 64)
    np.testing.assert_array_equal(det(x).asnumpy(), det(x).asnumpy())
    noisy = _build('texture_net', noise_channels=3)
    assert count_params(noisy) > count_params(det)
    a, b = noisy(x).asnumpy(), noisy(x).asnumpy()
    assert a.shape == x.shape
    assert a.min() >= 0 and a.max() <= 255
    assert np.abs(a - b).max() > 0
    noisy.hybridize()
    assert noisy(x).shape == x.shape
