"""One training step and what it runs on: what :func:`~mxstyle.training.train` does per batch, and
what ``bench/train_step.py`` times.

- :func:`build_training`: the generator, initialized, in its training graph, with an Adam trainer
- :func:`train_step`: one forward + backward through the graph and one Adam update
"""
from typing import Any, NamedTuple

import mxnet as mx
from mxnet import autograd, gluon

from .graph import build_training_graph
from .guards import check_finite

#: The loss terms of a step, in the order the training graph returns them.
LOSS_TERMS = ("loss", "content", "style", "tv", "saturation")


class TrainingSetup(NamedTuple):
    generator: Any   # the generator being trained (a HybridBlock)
    graph: Any       # its TrainingGraph (hybridized)
    loss: Any        # the graph's PerceptualLoss (style targets: ``loss.style_targets(image)``)
    trainer: Any     # Adam over the generator's parameters
    ctx: Any


def build_training(options, *, generator=None, ctx=None, fast_layers=True):
    """``generator`` (default: a new ``options.arch``) initialized from ``options.seed``, wrapped in
    the training graph of ``options.loss_config()``, ``options.saturation_weight`` and
    ``options.loss_precision()``, with Adam at
    ``options.lr``; returns a :class:`TrainingSetup`.

    ``fast_layers=False`` keeps MXNet's own layers (see :class:`~.graph.TrainingGraph`), for
    comparison; so does ``graph.hybridize(active=False)`` afterwards, which runs it imperatively.
    """
    from ..models import get_model

    ctx = ctx or mx.cpu()
    mx.random.seed(options.seed)
    if generator is None:
        generator = get_model(options.arch)
    generator.initialize(mx.init.Xavier(magnitude=2.0), ctx=ctx)
    graph, loss = build_training_graph(generator, options.loss_config(), vgg_weights=options.vgg_weights,
                                       ctx=ctx, fast_layers=fast_layers,
                                       saturation_weight=options.saturation_weight,
                                       precision=options.loss_precision())
    trainer = gluon.Trainer(generator.collect_params(), "adam", {"learning_rate": options.lr})
    return TrainingSetup(generator, graph, loss, trainer, ctx)


def train_step(graph, trainer, photos, style_grams, *, step=0):
    """One update of the generator: ``graph(photos, *style_grams)`` forward and backward, its loss
    terms read back and checked (:class:`~.guards.DivergedError`, naming ``step``, before the
    weights change), ``trainer.step(1)``, then ``waitall()``.

    Returns ``(terms, stylized)``: the :data:`LOSS_TERMS` as floats, and the generator's output.
    """
    with autograd.record():
        *losses, stylized = graph(photos, *style_grams)
    losses[0].backward()
    terms = {name: float(value.asscalar()) for name, value in zip(LOSS_TERMS, losses)}
    check_finite(step, terms)  # before the update: the weights stay good
    trainer.step(1)
    mx.nd.waitall()
    return terms, stylized
