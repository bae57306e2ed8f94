"""Export a trained style network as a model folder: MXNet symbol, ONNX, optional int8, model card.

    mxstyle export runs/NAME --name NAME [--out models/NAME] [--int8 --calib photos/]

SOURCE is a training run folder (its latest checkpoint is used) or a checkpoint folder
(RUN_DIR/checkpoints/step-N). OUT gets NAME-symbol.json + NAME-0000.params (MXNet fp32),
NAME.onnx (opset 13, any batch/height/width), with --int8 NAME.int8.onnx (onnxruntime) and
NAME-int8-symbol.json + NAME-int8-0000.params (MXNet oneDNN), each kept only if its output on
held-out photos stays within --min-psnr of fp32, and model.json listing every file with its
sha256. The folder is replaced only after everything was written and checked.
"""
import argparse
from pathlib import Path



def parse_args(argv, prog=None):
    p = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", metavar="RUN_DIR_OR_CHECKPOINT", help="training run folder or checkpoint folder")
    p.add_argument("--name", required=True, help="model name: the file names inside OUT")
    p.add_argument("--out", default=None, help="model folder (default models/NAME)")
    q = p.add_argument_group("int8")
    q.add_argument("--int8", action="store_true", help="also write int8 models (onnxruntime and MXNet)")
    q.add_argument("--calib", default=None, metavar="PHOTO_DIR",
                   help="real photos to calibrate on (default: the run's training photos, when present)")
    q.add_argument("--calib-count", type=int, default=16, help="calibration photos (default %(default)s)")
    q.add_argument("--holdout-count", type=int, default=4,
                   help="other photos the int8 output is checked on (default %(default)s)")
    q.add_argument("--calib-size", type=int, default=512,
                   help="photos are cropped to this square (default %(default)s)")
    q.add_argument("--min-psnr", type=float, default=35.0,
                   help="keep an int8 model only if its mean PSNR vs fp32 is at least this (dB, default %(default)s)")
    q.add_argument("--mxnet-calib-mode", choices=("naive", "entropy"), default="naive",
                   help="MXNet calibration: min/max or KL thresholds (slower) (default %(default)s)")
    q.add_argument("--int8-backends", default="onnxruntime,mxnet",
                   help="comma-separated: onnxruntime, mxnet (default %(default)s)")
    q.add_argument("--bench-size", type=int, default=512,
                   help="square size of the speed measurement (default %(default)s)")
    q.add_argument("--bench-runs", type=int, default=5, help="timed runs, median reported (default %(default)s)")
    s = p.add_argument_group("style (for the model card)")
    s.add_argument("--style-image", default=None, help="the painting, copied as style.jpg (longest side <= 512)")
    s.add_argument("--style-source", default=None, help="where the painting comes from (free text)")
    s.add_argument("--style-license", default=None, help="the painting's license (free text)")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def main(argv=None, prog=None):
    args = parse_args(argv, prog)
    from ..export import export_model

    out = args.out if args.out is not None else str(Path("models") / args.name)
    card = export_model(
        args.source, args.name, out, int8=args.int8, calib=args.calib, calib_count=args.calib_count,
        calib_size=args.calib_size, holdout_count=args.holdout_count, min_psnr=args.min_psnr,
        mxnet_calib_mode=args.mxnet_calib_mode,
        int8_backends=[b.strip() for b in args.int8_backends.split(",") if b.strip()],
        style_image=args.style_image, style_source=args.style_source, style_license=args.style_license,
        bench_size=args.bench_size, bench_runs=args.bench_runs, progress=not args.no_progress)
    print(f"{out}: {card['arch']} model {card['name']} from {card['training']['checkpoint']}")
    for role, record in card["files"].items():
        print(f"  {role:18s} {record['path']} ({record['bytes']:,} bytes)")
