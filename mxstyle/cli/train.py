"""Train a fast feed-forward style network on a folder of photos.

    mxstyle train --style painting.jpg --data photos/ --out runs/NAME

RUN_DIR gets log.jsonl (one JSON object per logged step), loss.png, previews/ (a fixed photo
stylized at each checkpoint) and checkpoints/. Interrupt at any time; `--resume` with the
same options continues up to --steps along the same loss trajectory.
"""
import argparse

from . import options


def parse_args(argv, prog=None):
    from ..models import list_models
    from ..training.loop import TrainOptions

    d = TrainOptions(style="", data="", out="")
    p = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--style", required=True, help="the painting")
    p.add_argument("--data", required=True, help="folder of training photos (searched recursively)")
    p.add_argument("--out", required=True, help="run folder for checkpoints, logs and previews")
    p.add_argument("--arch", default=d.arch, choices=list_models(), help="generator (default %(default)s)")
    p.add_argument("--steps", type=int, default=d.steps, help="total steps of the run (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--image-size", type=int, default=d.image_size, help="training crop size (default %(default)s)")
    p.add_argument("--style-size", type=int, default=d.style_size,
                   help="longest side of the style image (default %(default)s)")
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every)
    p.add_argument("--log-every", type=int, default=d.log_every)
    p.add_argument("--keep-checkpoints", type=int, default=d.keep_checkpoints, metavar="N",
                   help="checkpoints kept on disk, the newest (default %(default)s; 0: every one)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--init-from", default=None, metavar="RUN",
                   help="start from the generator (and Adam state) of another run's newest checkpoint, or of a "
                        "checkpoint folder: fine-tuning, e.g. with another loss")
    p.add_argument("--saturation-weight", type=float, default=d.saturation_weight,
                   help="penalty on output logits beyond tanh's working range (default %(default)s); see "
                        "mxstyle/training/graph.py")
    p.add_argument("--workers", type=int, default=d.workers, help="photo-loading processes (0: in-process)")
    p.add_argument("--preview", default=None, help="photo for the previews (default: the first training photo)")
    p.add_argument("--vgg-weights", default=d.vgg_weights, help="VGG16 .params file (default: ImageNet, cached)")
    p.add_argument("--no-progress", action="store_true")
    from types import SimpleNamespace

    options.add_loss_options(p, SimpleNamespace(content_weight=d.content_weight, style_weight=d.style_weight,
                                            tv_weight=d.tv_weight))
    p.set_defaults(content_layers=d.content_layers, style_layers=d.style_layers)
    return p.parse_args(argv)


def main(argv=None, prog=None):
    args = parse_args(argv, prog)
    from ..training.loop import TrainOptions, train

    options = TrainOptions(
        style=args.style, data=args.data, out=args.out, arch=args.arch, steps=args.steps,
        batch_size=args.batch_size, image_size=args.image_size, style_size=args.style_size,
        content_weight=args.content_weight, style_weight=args.style_weight, tv_weight=args.tv_weight,
        saturation_weight=args.saturation_weight, content_layers=tuple(args.content_layers),
        style_layers=tuple(args.style_layers), init_from=args.init_from,
        style_layer_weights=args.style_layer_weights, lr=args.lr, seed=args.seed,
        checkpoint_every=args.checkpoint_every, log_every=args.log_every, resume=args.resume,
        keep_checkpoints=args.keep_checkpoints,
        workers=args.workers, preview=args.preview, vgg_weights=args.vgg_weights,
        progress=not args.no_progress)
    result = train(options)
    print(f"{result.run_dir}: step {result.step} of {options.steps}"
          + (f", loss {result.last['loss']:.4g}" if result.last else " (nothing left to do)"))
