"""The slow, exact method: Gatys et al. 2015, "A Neural Algorithm of Artistic Style".

The pixels of one image are optimized (L-BFGS or Adam) so that its VGG16 features match the
photo's at the content layers and its Gram matrices match the painting's at the style layers.

    result = stylize_gatys("photo.jpg", "painting.jpg", size=512, iters=300)
    mxstyle.io.write_image("out.jpg", result.image)
"""
import time
from dataclasses import dataclass, field
from typing import Dict, List

import mxnet as mx
import numpy as np
from mxnet import autograd

from . import color, io
from .errors import ConfigError
from .losses import LossConfig, PerceptualLoss
from .vgg import load_vgg16

OPTIMIZERS = ("lbfgs", "adam")
INITS = ("content", "noise", "style")


@dataclass
class GatysResult:
    image: np.ndarray                       # HxWx3 float32 RGB, 0-255
    history: List[dict] = field(default_factory=list)  # one dict per iteration
    seconds: float = 0.0
    snapshots: Dict[int, np.ndarray] = field(default_factory=dict)  # iteration -> image, as asked


def _check_options(size, iters, optimizer, init, style_scale):
    if optimizer not in OPTIMIZERS:
        raise ConfigError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, not {optimizer!r}")
    if init not in INITS:
        raise ConfigError(f"init must be one of {', '.join(INITS)}, not {init!r}")
    if not (isinstance(size, int) and size >= 32):
        raise ConfigError(f"size must be an integer >= 32 pixels, not {size!r}")
    if not (isinstance(iters, int) and iters >= 1):
        raise ConfigError(f"iters must be a positive integer, not {iters!r}")
    if not style_scale > 0:
        raise ConfigError(f"style_scale must be > 0, not {style_scale!r}")


def _blend_weights(count, weights):
    if weights is None:
        weights = [1.0] * count
    weights = [float(w) for w in weights]
    if len(weights) != count:
        raise ConfigError(f"{len(weights)} style blend weights given for {count} style images")
    if any(not w >= 0 for w in weights) or sum(weights) <= 0:
        raise ConfigError(f"style blend weights must be >= 0 with a positive sum, not {weights}")
    return [w / sum(weights) for w in weights]


def stylize_gatys(content, styles, *, size=512, iters=300, optimizer="lbfgs", init="content",
                  config=None, style_scale=1.0, style_blend_weights=None, preserve_colors=False,
                  seed=0, lr=5.0, pooling="max", vgg_weights="imagenet", snapshots=(), progress=True,
                  ctx=None):
    """Paint ``content`` in the style of ``styles`` (one image or a list) by optimization.

    ``content``/``styles`` are anything :func:`mxstyle.io.read_image` accepts. ``size`` is the
    longest side of the result; each style image is resized to ``size * style_scale``.
    ``preserve_colors`` styles the luminance only and keeps the photo's colors.
    ``lr`` is Adam's step in pixel units (unused by L-BFGS). ``vgg_weights`` is passed to
    :func:`mxstyle.vgg.load_vgg16` ("imagenet", a ``.params`` path, or None for random weights).
    ``snapshots``: iteration numbers (1..iters) whose image to keep, e.g. to measure how quality
    grows with iterations; 0 keeps the starting image. Returns a :class:`GatysResult`.
    """
    _check_options(size, iters, optimizer, init, style_scale)
    snapshots = set(snapshots)
    if any(not (isinstance(k, int) and 0 <= k <= iters) for k in snapshots):
        raise ConfigError(f"snapshots must be iteration numbers from 0 to {iters}, not {sorted(snapshots, key=str)}")
    config = config or LossConfig()
    styles = list(styles) if isinstance(styles, (list, tuple)) else [styles]
    if not styles:
        raise ConfigError("give at least one style image")
    blend = _blend_weights(len(styles), style_blend_weights)
    ctx = ctx or mx.cpu()
    rng = np.random.RandomState(seed)
    mx.random.seed(seed)

    content_img = io.resize_max_side(io.read_image(content), size)
    style_imgs = [io.resize_max_side(io.read_image(s), max(16, round(size * style_scale))) for s in styles]
    if preserve_colors:
        content_y = color.luminance(content_img)
        target_content = color.gray3(content_y)
        style_imgs = [color.gray3(color.match_luminance(color.luminance(s), content_y)) for s in style_imgs]
    else:
        target_content = content_img

    vgg = load_vgg16(config.vgg_layers, pooling=pooling, weights=vgg_weights, ctx=ctx)
    loss_net = PerceptualLoss(vgg, config)
    loss_net.hybridize(static_alloc=True, static_shape=True)

    def tensor(img):
        return mx.nd.array(io.to_tensor(img), ctx=ctx)

    content_targets = loss_net.content_targets(tensor(target_content))
    style_grams = None
    for weight, style_img in zip(blend, style_imgs):
        grams = loss_net.style_targets(tensor(style_img))
        style_grams = [weight * g for g in grams] if style_grams is None else \
            [acc + weight * g for acc, g in zip(style_grams, grams)]
    targets = content_targets + style_grams

    h, w = target_content.shape[:2]
    if init == "content":
        start = target_content
    elif init == "style":
        start = io.resize(style_imgs[0], (h, w))
    else:
        start = rng.uniform(0, 255, size=(h, w, 3)).astype(np.float32)
    x = tensor(start)

    def evaluate(x_nd):
        """Loss terms and gradient at x_nd (1x3xHxW)."""
        x_nd.attach_grad()
        with autograd.record():
            total, content_l, style_l, tv_l = loss_net(x_nd, *targets)
        total.backward()
        terms = dict(loss=float(total.asscalar()), content=float(content_l.asscalar()),
                     style=float(style_l.asscalar()), tv=float(tv_l.asscalar()))
        return terms, x_nd.grad

    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=iters, desc=f"gatys {optimizer}", unit="it", dynamic_ncols=True)
    history, kept, shape = [], {}, x.shape
    started = time.perf_counter()

    def finish(pixels):  # an iterate (NDArray, or L-BFGS's flat float64 vector) -> the image
        pixels = pixels.asnumpy() if isinstance(pixels, mx.nd.NDArray) else pixels
        out = np.clip(io.from_tensor(np.asarray(pixels, np.float32).reshape(shape)), 0, 255)
        return color.keep_colors(out, content_img) if preserve_colors else out

    def keep(k, pixels):
        if k in snapshots:
            kept[k] = finish(pixels)

    def record(terms, pixels):
        history.append(dict(iter=len(history) + 1, seconds=round(time.perf_counter() - started, 3), **terms))
        keep(len(history), pixels)
        if bar is not None:
            bar.set_postfix(loss=f"{terms['loss']:.4g}")
            bar.update(1)

    keep(0, x)
    try:
        if optimizer == "lbfgs":
            x = _run_lbfgs(x, evaluate, iters, record)
        else:
            x = _run_adam(x, evaluate, iters, lr, record)
    finally:
        if bar is not None:
            bar.close()

    return GatysResult(image=finish(x), history=history, seconds=time.perf_counter() - started,
                       snapshots=kept)


def _run_lbfgs(x, evaluate, iters, record):
    """L-BFGS-B (SciPy) with the pixels boxed to [0, 255]; one history entry per iteration.

    Each accepted iterate satisfies the Wolfe sufficient-decrease condition, so the recorded
    loss falls monotonically.
    """
    from scipy.optimize import Bounds, minimize

    shape, ctx = x.shape, x.context
    last = {}

    def fun(flat):
        terms, grad = evaluate(mx.nd.array(flat.reshape(shape), ctx=ctx))
        last[flat.tobytes()[:64] + flat[-8:].tobytes()] = terms  # key: cheap fingerprint of x
        last["latest"] = terms
        return terms["loss"], grad.asnumpy().ravel().astype(np.float64)

    def callback(intermediate_result):
        xk = intermediate_result.x
        terms = last.get(xk.tobytes()[:64] + xk[-8:].tobytes(), last["latest"])
        record(dict(terms, loss=float(intermediate_result.fun)), xk)

    x0 = x.asnumpy().ravel().astype(np.float64)
    result = minimize(fun, x0, jac=True, method="L-BFGS-B", bounds=Bounds(0.0, 255.0), callback=callback,
                      options=dict(maxiter=iters, maxcor=20, ftol=1e-15, gtol=1e-12, maxfun=iters * 3))
    return mx.nd.array(result.x.reshape(shape).astype(np.float32), ctx=ctx)


def _run_adam(x, evaluate, iters, lr, record):
    """Adam on the pixels, clipped to [0, 255] after every step."""
    optimizer = mx.optimizer.Adam(learning_rate=lr)
    state = optimizer.create_state(0, x)
    for _ in range(iters):
        terms, grad = evaluate(x)
        optimizer.update(0, x, grad, state)
        x = mx.nd.clip(x, 0, 255)
        record(terms, x)
    return x
