"""Export a trained style network as a model folder: MXNet symbol, ONNX, optional int8, model card.

    mxstyle export runs/NAME --name NAME [--out models/NAME] [--int8 --calib photos/]

SOURCE is a training run folder (its latest checkpoint is used) or a checkpoint folder
(RUN_DIR/checkpoints/step-N). OUT gets NAME-symbol.json + NAME-0000.params (MXNet fp32),
NAME.onnx (opset 13, any batch/height/width), with --int8 NAME.int8.onnx (onnxruntime) and
NAME-int8-symbol.json + NAME-int8-0000.params (MXNet oneDNN), each kept only if its output on
held-out photos stays within --min-psnr of fp32, and model.json listing every file with its
sha256. The folder is replaced only after everything was written and checked. --triton REPO
also writes REPO/NAME for Triton Inference Server (mxstyle triton does it for existing models).
"""
import argparse
from pathlib import Path

from . import options


def parse_args(argv, prog=None):
    p = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", metavar="RUN_DIR_OR_CHECKPOINT", help="training run folder or checkpoint folder")
    p.add_argument("--name", required=True, help="model name: the file names inside OUT")
    p.add_argument("--out", default=None, help="model folder (default models/NAME)")
    p.add_argument("--triton", default=None, metavar="REPO",
                   help="also write a Triton model repository entry REPO/NAME (as mxstyle triton does)")
    from ..export.options import ExportOptions

    options.add_dataclass_options(p, ExportOptions)
    return p.parse_args(argv)


def main(argv=None, prog=None):
    args = parse_args(argv, prog)
    from ..export import ExportOptions, export_model

    out = args.out if args.out is not None else str(Path("models") / args.name)
    card = export_model(args.source, args.name, out, ExportOptions(**options.dataclass_kwargs(ExportOptions, args)))
    print(f"{out}: {card['arch']} model {card['name']} from {card['training']['checkpoint']}")
    for role, record in card["files"].items():
        print(f"  {role:18s} {record['path']} ({record['bytes']:,} bytes)")
    if args.triton:
        from ..triton_repo import write_triton_model

        print(f"{write_triton_model(out, args.triton)}: Triton config.pbtxt and 1/model.onnx")
