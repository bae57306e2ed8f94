"""Shared pieces of the command-line tools in tools/: error handling and option parsing."""
import argparse
import sys

from .errors import ConfigError, MxstyleError


def run(main, argv=None):
    """Run ``main(argv)``; a user error prints one line and exits 2, Ctrl-C exits 130."""
    try:
        return main(argv) or 0
    except MxstyleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def layer_list(text):
    """argparse type: 'relu1_1,relu2_1' -> ('relu1_1', 'relu2_1'), validated."""
    from .vgg import check_layers

    try:
        return check_layers([part.strip() for part in text.split(",") if part.strip()])
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc))


def float_list(text):
    """argparse type: '1,0.5' -> (1.0, 0.5)."""
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}")


def add_loss_options(parser, defaults):
    """The perceptual-loss options shared by optimize.py and train.py."""
    from .losses import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS

    group = parser.add_argument_group("loss")
    group.add_argument("--content-weight", type=float, default=defaults.content_weight)
    group.add_argument("--style-weight", type=float, default=defaults.style_weight)
    group.add_argument("--tv-weight", type=float, default=defaults.tv_weight)
    group.add_argument("--content-layers", type=layer_list, default=DEFAULT_CONTENT_LAYERS,
                       help="comma-separated VGG16 layers (default: %(default)s)")
    group.add_argument("--style-layers", type=layer_list, default=DEFAULT_STYLE_LAYERS,
                       help="comma-separated VGG16 layers (default: %(default)s)")
    group.add_argument("--style-layer-weights", type=float_list, default=None,
                       help="one weight per style layer (default: all 1)")
    return group


def loss_config(args, config_class):
    return config_class(content_layers=args.content_layers, style_layers=args.style_layers,
                        content_weight=args.content_weight, style_weight=args.style_weight,
                        tv_weight=args.tv_weight, style_layer_weights=args.style_layer_weights)
