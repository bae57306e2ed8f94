"""Option types and option groups shared by the subcommands of ``mxstyle``."""
import argparse
import dataclasses

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


DEFAULT_HELP = "(default %(default)s)"  # for an option whose name says the rest


def add_loss_options(parser, defaults):
    """The perceptual-loss options shared by optimize.py and train.py; ``defaults`` gives the
    weights and layers (a LossConfig, a TrainOptions)."""
    group = parser.add_argument_group("loss")
    group.add_argument("--content-weight", type=float, default=defaults.content_weight, help=DEFAULT_HELP)
    group.add_argument("--style-weight", type=float, default=defaults.style_weight, help=DEFAULT_HELP)
    group.add_argument("--tv-weight", type=float, default=defaults.tv_weight, help=DEFAULT_HELP)
    group.add_argument("--content-layers", type=layer_list, default=defaults.content_layers,
                       help=f"comma-separated VGG16 layers (default {','.join(defaults.content_layers)})")
    group.add_argument("--style-layers", type=layer_list, default=defaults.style_layers,
                       help=f"comma-separated VGG16 layers (default {','.join(defaults.style_layers)})")
    group.add_argument("--style-layer-weights", type=float_list, default=None,
                       help="one weight per style layer (default: all 1)")
    return group


def add_dataclass_options(parser, cls):
    """One option per field of the dataclass ``cls`` whose metadata has ``help`` (None: no text),
    in field order: ``--batch-size`` for ``batch_size`` (or the field's ``flag``), its default
    (none: required), a switch for a bool, else the type of the default (or the field's ``type``),
    and the field's ``group``, ``metavar`` and ``choices`` (a callable is called now)."""
    groups = {None: parser}
    for f in dataclasses.fields(cls):
        meta = f.metadata
        if "help" not in meta:
            continue
        group = meta.get("group")
        if group not in groups:
            groups[group] = parser.add_argument_group(group)
        kwargs = dict(dest=f.name, help=meta["help"])
        if meta["help"] is None and f.default not in (dataclasses.MISSING, None) and not isinstance(f.default, bool):
            kwargs["help"] = DEFAULT_HELP
        if f.default is dataclasses.MISSING:
            kwargs["required"] = True
        elif isinstance(f.default, bool):
            kwargs["action"] = "store_false" if f.default else "store_true"
        elif isinstance(f.default, tuple) and "type" not in meta:  # a comma-separated list
            kwargs.update(type=comma_list, default=",".join(map(str, f.default)))
        else:
            kwargs["default"] = f.default
            if "type" in meta or f.default is not None:
                kwargs["type"] = meta.get("type", type(f.default))
        if "metavar" in meta:
            kwargs["metavar"] = meta["metavar"]
        if "choices" in meta:
            kwargs["choices"] = meta["choices"]() if callable(meta["choices"]) else meta["choices"]
        groups[group].add_argument(meta.get("flag", "--" + f.name.replace("_", "-")), **kwargs)


def comma_list(text):
    """argparse type: 'onnxruntime, mxnet' -> ('onnxruntime', 'mxnet')."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def dataclass_kwargs(cls, args):
    """The fields of the dataclass ``cls`` that the parsed ``args`` hold, as keyword arguments."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}


def loss_config(args, config_class):
    return config_class(content_layers=args.content_layers, style_layers=args.style_layers,
                        content_weight=args.content_weight, style_weight=args.style_weight,
                        tv_weight=args.tv_weight, style_layer_weights=args.style_layer_weights)


def _number(text, cast, in_range, expected, unreadable=None):
    """``cast(text)`` if ``in_range`` of it, else argparse's error "expected ..., got ..."
    (``unreadable``: another wording when ``text`` is not a number at all)."""
    try:
        value = cast(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected {unreadable or expected}, got {text!r}') from None
    if not in_range(value):
        raise argparse.ArgumentTypeError(f'expected {expected}, got {text!r}')
    return value


def positive_int(text):
    """argparse type: an integer of at least 1."""
    return _number(text, int, lambda v: v >= 1, 'a positive integer')


def positive_seconds(text):
    """argparse type: a positive number of seconds."""
    return _number(text, float, lambda v: v > 0, 'a positive number of seconds', 'a number of seconds')


def port(text):
    """argparse type: a TCP port, 0 to 65535 (0: the system picks a free one)."""
    return _number(text, int, lambda v: 0 <= v <= 65535, 'a port from 0 to 65535')


def unit_float(text):
    """argparse type: a number from 0 to 1."""
    return _number(text, float, lambda v: 0.0 <= v <= 1.0, 'a number from 0 to 1')


def quality(text):
    """argparse type: a JPEG/WebP quality, 1 to 100."""
    value = positive_int(text)
    if value > 100:
        raise argparse.ArgumentTypeError(f'expected 1 to 100, got {text!r}')
    return value
