"""The ``mxstyle`` command: one subcommand per stage, each a thin front of a library function.

    mxstyle stylize [PHOTO ...]      paint photos with a shipped or exported model (mxstyle.runtime)
    mxstyle optimize ...             Gatys optimization, the slow exact method (mxstyle.optimize)
    mxstyle train ...                train a fast style network (mxstyle.training)
    mxstyle export RUN --name NAME   a trained run -> a model folder (mxstyle.export)
    mxstyle evaluate --photos DIR    quality against Gatys (mxstyle.evaluation)
    mxstyle serve                    an HTTP service with a web page (mxstyle.serve)
    mxstyle triton MODEL --out REPO  a Triton model repository for a model (mxstyle.triton_repo)

``python -m mxstyle`` is the same command, and ``python tools/NAME.py`` runs one subcommand from
a checkout. Errors a user can cause print one line and exit with status 2.
"""
import importlib
import sys

from ..errors import MxstyleError

__all__ = ["COMMANDS", "main", "run"]

#: Subcommand -> (module in mxstyle.cli, one-line summary).
COMMANDS = {
    "stylize": ("stylize", "paint photos with a style model (default: the shipped sample photo)"),
    "optimize": ("optimize", "Gatys optimization of one photo: slow, exact, no training"),
    "train": ("train", "train a fast feed-forward style network on a folder of photos"),
    "export": ("export", "export a trained run as a model folder (MXNet, ONNX, int8, card)"),
    "evaluate": ("evaluate", "measure style models against Gatys optimization"),
    "serve": ("serve", "an HTTP service: web page, image API, metrics, Open Inference Protocol v2"),
    "triton": ("triton", "write a Triton Inference Server model repository for exported models"),
}


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


def _usage():
    from .. import __version__

    width = max(map(len, COMMANDS))
    lines = [f"usage: mxstyle COMMAND [options]   (mxstyle {__version__}; mxstyle COMMAND --help)", "",
             "commands:"]
    lines += [f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv=None):
    """Entry point of the ``mxstyle`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0 if argv else 2
    if argv[0] == "--version":
        from .. import __version__

        print(f"mxstyle {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"error: unknown command {name!r}; choose from {', '.join(COMMANDS)}\n\n{_usage()}",
              file=sys.stderr)
        return 2
    module = importlib.import_module(f"{__name__}.{COMMANDS[name][0]}")
    return run(lambda args: module.main(args, prog=f"mxstyle {name}"), rest)
