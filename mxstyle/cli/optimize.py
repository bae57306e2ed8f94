"""Stylize one photo by optimization (Gatys et al. 2015): slow, exact, no training needed.

    mxstyle optimize --content photo.jpg --style painting.jpg --out out.jpg

Writes OUT, its loss history OUT-STEM.loss.json and a loss plot OUT-STEM.loss.png beside it.
"""
import argparse
import json
from pathlib import Path

from . import options


def parse_args(argv, prog=None):
    from ..losses import LossConfig
    from ..optimize import INITS, OPTIMIZERS

    defaults = LossConfig()
    p = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--content", required=True, help="the photo")
    p.add_argument("--style", required=True, nargs="+", help="one or more paintings")
    p.add_argument("--out", required=True, help="output image (.jpg, .png, .webp...)")
    p.add_argument("--size", type=options.positive_int, default=512, help="longest side of the result (default %(default)s)")
    p.add_argument("--iters", type=options.positive_int, default=300, help="optimizer iterations (default %(default)s)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="lbfgs")
    p.add_argument("--lr", type=float, default=5.0, help="Adam step in pixel units (default %(default)s)")
    p.add_argument("--init", choices=INITS, default="content", help="starting image (default %(default)s)")
    p.add_argument("--style-scale", type=float, default=1.0,
                   help="style image size relative to --size (default %(default)s)")
    p.add_argument("--style-blend-weights", type=options.float_list, default=None,
                   help="comma-separated weights, one per --style image (default: equal)")
    p.add_argument("--preserve-colors", action="store_true", help="transfer luminance only; keep the photo's colors")
    p.add_argument("--pooling", choices=("max", "avg"), default="max", help="VGG pooling (default %(default)s)")
    p.add_argument("--vgg-weights", default="imagenet",
                   help="a VGG16 .params file (default: the cached ImageNet weights, fetched on first use)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quality", type=options.quality, default=95, help="JPEG quality (default %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    options.add_loss_options(p, defaults)
    return p.parse_args(argv)


def main(argv=None, prog=None):
    args = parse_args(argv, prog)
    from .. import io
    from ..losses import LossConfig
    from ..optimize import stylize_gatys
    from ..plot import plot_losses

    result = stylize_gatys(
        args.content, args.style, size=args.size, iters=args.iters, optimizer=args.optimizer,
        init=args.init, config=options.loss_config(args, LossConfig), style_scale=args.style_scale,
        style_blend_weights=args.style_blend_weights, preserve_colors=args.preserve_colors,
        seed=args.seed, lr=args.lr, pooling=args.pooling, vgg_weights=args.vgg_weights,
        progress=not args.no_progress)
    out = Path(args.out)
    io.write_image(out, result.image, quality=args.quality)
    stem = out.with_suffix("")
    record = dict(vars(args), seconds=round(result.seconds, 2), history=result.history)
    Path(f"{stem}.loss.json").write_text(json.dumps(record, indent=1, default=str))
    plot_losses(result.history, f"{stem}.loss.png", "iter", title=f"Gatys ({args.optimizer})")
    print(f"wrote {out} ({result.seconds:.1f} s, final loss {result.history[-1]['loss']:.4g})")
