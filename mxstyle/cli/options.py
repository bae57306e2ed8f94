"""Option types and option groups shared by the subcommands of ``mxstyle``."""
import argparse

from ..errors import ConfigError


def layer_list(text):
    """argparse type: 'relu1_1,relu2_1' -> ('relu1_1', 'relu2_1'), validated."""
    from ..vgg import check_layers

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
    from ..losses import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS

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


def positive_int(text):
    """argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a positive integer, got {text!r}') from None
    if value < 1:
        raise argparse.ArgumentTypeError(f'expected a positive integer, got {text!r}')
    return value


def unit_float(text):
    """argparse type: a number from 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a number from 0 to 1, got {text!r}') from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f'expected a number from 0 to 1, got {text!r}')
    return value


def quality(text):
    """argparse type: a JPEG/WebP quality, 1 to 100."""
    value = positive_int(text)
    if value > 100:
        raise argparse.ArgumentTypeError(f'expected 1 to 100, got {text!r}')
    return value
