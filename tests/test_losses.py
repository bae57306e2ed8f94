"""Gram matrix, content, style and total-variation losses, and their combination."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd

from mxstyle import ConfigError, losses, vgg


def nd(a):
    return mx.nd.array(np.asarray(a, np.float32))


def test_gram_matrix_is_normalized_by_c_h_w(rng):
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    gram = losses.GramMatrix()
    gram.hybridize()
    got = gram(nd(x)).asnumpy()
    flat = x.reshape(2, 3, 20)
    expected = np.einsum("nci,ndi->ncd", flat, flat) / (3 * 4 * 5)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_content_loss_is_mean_squared_error_per_sample(rng):
    a, b = rng.standard_normal((2, 2, 3, 3)), rng.standard_normal((2, 2, 3, 3))
    got = losses.ContentLoss()(nd(a), nd(b)).asnumpy()
    np.testing.assert_allclose(got, ((a - b) ** 2).reshape(2, -1).mean(1), rtol=1e-5)


def test_style_loss_weights_layers_and_broadcasts_one_target_over_the_batch(rng):
    f1, f2 = rng.standard_normal((3, 2, 4, 4)), rng.standard_normal((3, 4, 2, 2))
    t1, t2 = rng.standard_normal((1, 2, 2)), rng.standard_normal((1, 4, 4))
    style = losses.StyleLoss((2.0, 0.5))
    style.hybridize()
    got = style(nd(f1), nd(f2), nd(t1), nd(t2)).asnumpy()

    def gram(f):
        flat = f.reshape(f.shape[0], f.shape[1], -1)
        return np.einsum("nci,ndi->ncd", flat, flat) / flat[0].size

    expected = 2.0 * ((gram(f1) - t1) ** 2).reshape(3, -1).mean(1) + 0.5 * ((gram(f2) - t2) ** 2).reshape(3, -1).mean(1)
    np.testing.assert_allclose(got, expected, rtol=1e-4)


def test_total_variation():
    flat = np.full((1, 3, 8, 8), 77.0)
    assert losses.TVLoss()(nd(flat)).asscalar() == 0
    ramp = np.tile(np.arange(8, dtype=np.float32) * 2.0, (1, 3, 8, 1))  # +2 per column, rows equal
    assert losses.TVLoss()(nd(ramp)).asscalar() == pytest.approx(2.0)


def test_config_validates_layers_and_weights():
    with pytest.raises(ConfigError, match="relu"):
        losses.LossConfig(content_layers=("conv9",))
    with pytest.raises(ConfigError, match="style_weight"):
        losses.LossConfig(style_weight=-1)
    with pytest.raises(ConfigError, match="content_weight"):
        losses.LossConfig(content_weight=float("nan"))
    with pytest.raises(ConfigError, match="2 style layer weights"):
        losses.LossConfig(style_layers=("relu1_1",), style_layer_weights=(1, 2))
    cfg = losses.LossConfig(content_layers=("relu4_2",), style_layers=("relu3_1", "relu1_1"))
    assert cfg.vgg_layers == ("relu1_1", "relu3_1", "relu4_2")


@pytest.fixture(scope="module")
def perceptual():
    mx.random.seed(3)
    cfg = losses.LossConfig(content_layers=("relu2_2",), style_layers=("relu1_1", "relu2_1", "relu3_1"),
                            content_weight=2.0, style_weight=5.0, tv_weight=0.5)
    net = losses.PerceptualLoss(vgg.load_vgg16(cfg.vgg_layers, weights=None), cfg)
    net.hybridize()
    return net


def test_perceptual_loss_is_zero_at_its_own_targets(perceptual, photo):
    x = mx.nd.array(photo.transpose(2, 0, 1)[None])
    flat = mx.nd.ones_like(x) * 100.0
    total, content, style, tv = perceptual(flat, *perceptual.content_targets(flat), *perceptual.style_targets(flat))
    assert total.asscalar() == pytest.approx(0.0, abs=1e-6)
    total, content, style, tv = perceptual(x, *perceptual.content_targets(x), *perceptual.style_targets(x))
    assert content.asscalar() == pytest.approx(0.0, abs=1e-6) and style.asscalar() == pytest.approx(0.0, abs=1e-6)
    assert tv.asscalar() > 0  # the photo has edges
    np.testing.assert_allclose(total.asnumpy(), (content + style + tv).asnumpy(), rtol=1e-6)


def test_perceptual_loss_weights_and_gradients(perceptual, photo, painting):
    x = mx.nd.array(photo.transpose(2, 0, 1)[None])
    s = mx.nd.array(painting.transpose(2, 0, 1)[None])
    targets = perceptual.content_targets(x) + perceptual.style_targets(s)
    noisy = x + mx.nd.random.normal(0, 20, x.shape)
    noisy.attach_grad()
    with autograd.record():
        total, content, style, tv = perceptual(noisy, *targets)
    total.backward()
    grad = noisy.grad.asnumpy()
    assert np.isfinite(grad).all() and np.abs(grad).max() > 0
    # the tv term is its weight times the plain TV of the image
    # (two means over ~9e3 terms: another summation order may differ by sqrt(N) float32 ulps)
    assert tv.asscalar() == pytest.approx(0.5 * losses.TVLoss()(noisy).asscalar(), rel=1e-4)


def test_perceptual_loss_refuses_a_mismatched_vgg():
    cfg = losses.LossConfig()
    with pytest.raises(ConfigError, match="needs"):
        losses.PerceptualLoss(vgg.VGG16Features(("relu1_1",)), cfg)
