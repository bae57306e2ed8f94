"""Training feed-forward style networks (Johnson et al. 2016; Ulyanov et al. 2016).

- :mod:`.graph`      generator + VGG perceptual loss as one hybridized graph; the loss defaults
- :mod:`.step`       ``train_step``: one forward + backward + Adam update, what the loop runs per batch
- :mod:`.loop`       ``train(TrainOptions(...))``: the loop behind ``mxstyle train``
- :mod:`.checkpoint` atomic checkpoints that resume exactly
- :mod:`.guards`     NaN/Inf, collapse and colour-cast detection

Measurements behind the training choices: docs/training.md.
"""
from .checkpoint import CheckpointError, latest_checkpoint, load_checkpoint  # noqa: F401
from .graph import TrainingGraph, build_training_graph, default_train_config  # noqa: F401
from .guards import DivergedError  # noqa: F401
from .step import LOSS_TERMS, TrainingSetup, build_training, train_step  # noqa: F401
from .loop import TrainOptions, TrainResult, train  # noqa: F401
