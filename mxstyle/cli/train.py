"""Train a fast feed-forward style network on a folder of photos.

    mxstyle train --style painting.jpg --data photos/ --out runs/NAME

RUN_DIR gets log.jsonl (one JSON object per logged step), loss.png, previews/ (a fixed photo
stylized at each checkpoint) and checkpoints/. Interrupt at any time; `--resume` with the
same options continues up to --steps along the same loss trajectory.
"""
import argparse

from . import options


def parse_args(argv, prog=None):
    """The options are TrainOptions' fields (mxstyle/training/loop.py): names, defaults, help."""
    from ..training.loop import TrainOptions

    p = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_dataclass_options(p, TrainOptions)
    options.add_loss_options(p, TrainOptions(style="", data="", out=""))
    return p.parse_args(argv)


def main(argv=None, prog=None):
    args = parse_args(argv, prog)
    from ..training.loop import TrainOptions, train

    train_options = TrainOptions(**options.dataclass_kwargs(TrainOptions, args))
    result = train(train_options)
    print(f"{result.run_dir}: step {result.step} of {train_options.steps}"
          + (f", loss {result.last['loss']:.4g}" if result.last else " (nothing left to do)"))
