"""Serve style models over HTTP: a web page, a JSON/image API, Prometheus metrics and the Open
Inference Protocol v2 (KServe, Triton clients).

    mxstyle serve                                       # every model, http://127.0.0.1:8000/
    mxstyle serve --models langlois_s8 night_cafe --host 0.0.0.0 --port 8080 --workers 2

Models load once at start-up, each runs one warm-up inference, and /readyz answers 200 after
that. At most --workers inferences run at once and --max-queue more wait; past that a request
gets 503 with Retry-After. Bodies over --max-upload-mb get 413, images over --max-pixels 422,
requests not done within --timeout 504. Every request is one JSON line on stderr. Endpoints and
deployment: docs/serving.md. Needs the serve extra: pip install "mxstyle[serve]".
"""
import argparse

from . import options as types


def parse_args(argv, prog=None):
    from ..serve.options import ServeOptions, backend_choices, precision_choices

    d = ServeOptions()
    p = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=[], metavar="MODEL",
                   help="model names or folders (default: every model found: the shipped ones and $MXSTYLE_MODELS)")
    p.add_argument("--host", default=d.host, help="address to listen on (default %(default)s; 0.0.0.0 for every "
                                                  "interface)")
    p.add_argument("--port", type=types.port, default=d.port, help="port (default %(default)s; 0 takes a free one)")
    p.add_argument("--workers", type=types.positive_int, default=None,
                   help="inferences run at once (default: the usable CPU cores)")
    p.add_argument("--threads", type=types.positive_int, default=None,
                   help="intra-op threads of each inference (default: the cores divided among the workers)")
    p.add_argument("--max-queue", type=int, default=d.max_queue,
                   help="requests that may wait for a worker; past it 503 (default %(default)s)")
    p.add_argument("--max-upload-mb", type=float, default=d.max_upload_mb,
                   help="largest request body in MB; past it 413 (default %(default)s)")
    p.add_argument("--max-pixels", type=types.positive_int, default=d.max_pixels,
                   help="largest image, width x height; past it 422 (default %(default)s)")
    p.add_argument("--timeout", type=types.positive_seconds, default=d.timeout,
                   help="seconds a request may wait for and spend in inference; past it 504 (default %(default)s)")
    p.add_argument("--backend", default=d.backend, choices=backend_choices())
    p.add_argument("--precision", default=d.precision, choices=precision_choices())
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    return p.parse_args(argv)


def main(argv=None, prog=None):
    args = parse_args(argv, prog)
    from ..serve import ServeOptions, serve

    options = ServeOptions(models=tuple(args.models), host=args.host, port=args.port, workers=args.workers,
                           threads=args.threads, max_queue=args.max_queue, max_upload_mb=args.max_upload_mb,
                           max_pixels=args.max_pixels, timeout=args.timeout, backend=args.backend,
                           precision=args.precision)
    serve(options, log_level=args.log_level)
