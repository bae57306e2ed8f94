"""The hybridized training graph computes the same gradients as the same graph run imperatively.

MXNet 1.9 once gave wrong gradients here without any error (a reshaped view of a feature map that
also feeds a max pooling; see mxstyle.losses.gram_matrix): cosine 0.8 to the true gradient.
"""
import numpy as np
import pytest

mx = pytest.importorskip('mxnet')

from mxnet import autograd  # noqa: E402

from mxstyle.losses import LossConfig, PerceptualLoss  # noqa: E402
from mxstyle.models import get_model  # noqa: E402
from mxstyle.training.graph import build_training_graph, default_train_config  # noqa: E402
from mxstyle.vgg import load_vgg16  # noqa: E402

pytestmark = pytest.mark.filterwarnings('ignore:Please import `csr_matrix`:DeprecationWarning')


def _images(n, size, seed):
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    base = np.stack([128 + 90 * np.sin(x / 5.0), 128 + 90 * np.cos(y / 3.0), 255 * x / size])
    return mx.nd.array(np.clip(base[None] + rng.normal(0, 30, (n, 3, size, size)), 0, 255).astype(np.float32))


def _cosine(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize('fast_layers', [True, False], ids=['training-formulation', 'mxnet-layers'])
def test_hybridized_training_graph_gradients_equal_imperative(fast_layers):
    photos, style = _images(2, 64, 0), _images(1, 64, 1)
    grads = []
    for hybridize in (True, False):
        mx.random.seed(0)
        generator = get_model('johnson_lite')
        generator.initialize(mx.init.Xavier(magnitude=2.0))
        graph, loss = build_training_graph(generator, default_train_config(), vgg_weights=None,
                                           fast_layers=fast_layers)
        if not hybridize:
            graph.hybridize(active=False)
        grams = loss.style_targets(style)
        with autograd.record():
            out = graph(photos, *grams)
        out[0].backward()
        grads.append(np.concatenate([p.grad().asnumpy().ravel() for _, p in
                                     sorted(generator.collect_params().items()) if p.grad_req != 'null']))
    hybrid, imperative = grads
    assert _cosine(hybrid, imperative) > 1 - 1e-6
    assert np.linalg.norm(hybrid - imperative) / np.linalg.norm(imperative) < 1e-3


@pytest.mark.parametrize('config', [default_train_config(), LossConfig()], ids=['training', 'gatys'])
def test_hybridized_perceptual_loss_gradient_equals_imperative(config):
    image, photo, style = _images(2, 64, 2), _images(2, 64, 3), _images(1, 64, 4)
    grads = []
    for hybridize in (True, False):
        mx.random.seed(0)
        loss = PerceptualLoss(load_vgg16(config.vgg_layers, weights=None, hybridize=False), config)
        grams, targets = loss.style_targets(style), loss.content_targets(photo)
        if hybridize:
            loss.hybridize(static_alloc=True, static_shape=True)
        x = image.copy()
        x.attach_grad()
        with autograd.record():
            total = loss(x, *targets, *grams)[0]
        total.backward()
        grads.append(x.grad.asnumpy().ravel())
    assert _cosine(*grads) > 1 - 1e-6
