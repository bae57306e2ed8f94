"""Write a Triton Inference Server model repository for exported models (onnxruntime backend, CPU).

    mxstyle triton langlois night_cafe --out triton_repo
    tritonserver --model-repository triton_repo        # or KServe's Triton runtime (docs/serving.md)

Each MODEL (a name or a model folder) becomes OUT/NAME/config.pbtxt (platform onnxruntime_onnx,
dynamic batch, height and width, thread settings), OUT/NAME/1/model.onnx (the int8 file when the
model has one, else fp32; --precision picks) and OUT/NAME/mxstyle.json (stride and tensor
conventions: the model takes float32 NCHW RGB 0-255, height and width multiples of the stride).
With tritonclient[grpc] installed each config is checked against Triton's model_config.proto.
"""
import argparse

from . import options as types


def _count(text):
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer of at least 0, got {text!r}")
    return value


def parse_args(argv, prog=None):
    p = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", metavar="MODEL", help="model names or model folders")
    p.add_argument("--out", required=True, metavar="REPO", help="the model repository folder")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "int8"),
                   help="which ONNX file (default: int8 when the model has it)")
    p.add_argument("--threads", type=_count, default=0,
                   help="onnxruntime intra-op threads per instance (default 0: one per core)")
    p.add_argument("--instances", type=types.positive_int, default=1, help="CPU instances per model (default 1)")
    p.add_argument("--max-batch-size", type=_count, default=0,
                   help="0 (default): the batch is part of dims; N: Triton batches equal-sized requests up to N")
    return p.parse_args(argv)


def main(argv=None, prog=None):
    args = parse_args(argv, prog)
    from ..errors import ConfigError
    from ..triton_repo import parse_config, write_triton_model

    for model in args.models:
        target = write_triton_model(model, args.out, precision=args.precision, threads=args.threads,
                                    instances=args.instances, max_batch_size=args.max_batch_size)
        try:
            parse_config((target / "config.pbtxt").read_text())
            checked = "checked against Triton's model_config.proto"
        except ConfigError as exc:
            if "needs tritonclient" not in str(exc):
                raise
            checked = 'not checked: pip install "tritonclient[grpc]" to check it'
        print(f"{target}: config.pbtxt ({checked}), 1/model.onnx")
