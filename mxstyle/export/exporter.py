"""``export_model``: one training checkpoint -> a self-describing model folder.

Written into ``out_dir`` (see :mod:`mxstyle.export` for the card)::

    NAME-symbol.json, NAME-0000.params        MXNet symbolic model, fp32 (gluon.SymbolBlock.imports)
    NAME.onnx                                 ONNX opset 13, dynamic N/H/W, input 'data', output 'stylized'
    NAME.int8.onnx                            with int8=True, if onnxruntime int8 passes the fidelity bound
    NAME-int8-symbol.json, NAME-int8-0000.params   with int8=True, if MXNet int8 passes it
    style.jpg                                 with style_image=..., or kept from an earlier export
    model.json                                the model card: every file with its sha256 and size

Everything is written into a temporary folder beside ``out_dir`` and checked there; only then are
the files moved into ``out_dir`` (a rename when it does not exist yet; otherwise file by file,
the card last). A failure or interrupt leaves ``out_dir`` as it was.
"""
import datetime
import json
import os
import re
import secrets
import shutil
from pathlib import Path

import numpy as np

from .. import __version__, io
from ..errors import ConfigError, MxstyleError
from .card import CARD_FILE, CARD_FORMAT, file_record, read_card, ModelError
from .onnx_export import INPUT_NAME, OPSET, OUTPUT_NAME, quiet_onnx_deprecations

__all__ = ["ExportError", "export_model", "resolve_checkpoint", "sanitize_options"]

STYLE_FILE = "style.jpg"
INT8_BACKENDS = ("onnxruntime", "mxnet")
STYLE_MAX_SIDE = 512
#: onnxruntime vs MXNet on the 0-255 scale. MXNet's own InstanceNorm is the less accurate of the two.
ONNX_TOLERANCE = 2e-2
#: The exported symbol reloaded vs the Gluon block it came from.
SYMBOL_TOLERANCE = 1e-3
#: Options of a run that are local paths: only their file names go into the card.
PATH_OPTIONS = ("style", "data", "preview", "vgg_weights")
#: Options of a run that say nothing about the model.
DROPPED_OPTIONS = ("out", "resume", "progress", "workers")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class ExportError(MxstyleError):
    """An exported model failed its own checks (e.g. ONNX output differs from MXNet's)."""


def resolve_checkpoint(source):
    """A run folder -> its latest checkpoint folder; a checkpoint folder -> itself."""
    from ..training.checkpoint import STATE_FILE, latest_checkpoint

    path = Path(source)
    if not path.exists():
        raise ConfigError(f"{source}: no such run or checkpoint folder")
    if not path.is_dir():
        raise ConfigError(f"{source}: not a folder; give a training run folder (RUN_DIR) or one of its "
                          "checkpoints (RUN_DIR/checkpoints/step-N)")
    if (path / STATE_FILE).is_file():
        return path
    latest = latest_checkpoint(path)
    if latest is None:
        raise ConfigError(f"{source}: neither a checkpoint folder (no {STATE_FILE}) nor a run folder with a "
                          "complete checkpoint under checkpoints/")
    return latest


def sanitize_options(options):
    """A run's options without what only means something on the training machine.

    Paths are reduced to their file names (``../shared/data/styles/x.jpg`` -> ``x.jpg``);
    ``out``, ``resume``, ``progress`` and ``workers`` are dropped.
    """
    clean = {}
    for key, value in (options or {}).items():
        if key in DROPPED_OPTIONS:
            continue
        if isinstance(value, str) and (key in PATH_OPTIONS or "/" in value or os.sep in value):
            value = os.path.basename(os.path.normpath(value)) or value
        clean[key] = value
    return clean


def _init_record(init_from):
    """Where a fine-tuned run started (see ``--init-from``), without the training machine's paths."""
    if not init_from:
        return None
    checkpoint = Path(init_from["checkpoint"])
    return dict(run=checkpoint.parent.parent.name, checkpoint=checkpoint.name, step=init_from.get("step"),
                generator_sha256=init_from.get("generator_sha256"))


def _check_name(name):
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ConfigError(f"model name {name!r} must be 1-100 letters, digits, '.', '_' or '-' "
                          "(starting with a letter or digit)")
    return name


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, not {value!r}")
    return int(value)


def _sample(n, h, w, seed=0):
    """A smooth photo-like batch with a little noise (0-255, NCHW float32)."""
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    imgs = []
    for i in range(n):
        img = np.stack([128 + 100 * np.sin(x / (5.0 + i) + y / 11.0), 128 + 90 * np.cos(y / (4.0 + i)),
                        255.0 * (x + y) / (h + w)], 0)
        imgs.append(np.clip(img + rng.normal(0, 8, img.shape), 0, 255))
    return np.stack(imgs).astype(np.float32)


def _round_up(value, stride, minimum):
    return max(minimum, -(-value // stride) * stride)


def _fsync_tree(folder):
    for entry in Path(folder).iterdir():
        if entry.is_file():
            fd = os.open(entry, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def _fsync_dir(folder):
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def export_model(source, name, out_dir=None, *, int8=False, calib=None, calib_count=16, calib_size=512,
                 holdout_count=4, min_psnr=35.0, mxnet_calib_mode="naive", int8_backends=INT8_BACKENDS,
                 style_image=None, style_source=None, style_license=None, bench_size=512, bench_runs=5,
                 progress=True, log=print):
    """Export checkpoint ``source`` (a run folder or a checkpoint folder) as model ``name``.

    Writes into ``out_dir`` (default ``models/NAME``) the files listed in the module docstring
    and returns the model card (also written as ``out_dir/model.json``).

    int8 (``int8=True``): calibrates on ``calib_count`` photos from ``calib`` (default: the run's
    training photo folder, when it exists here) cropped to ``calib_size`` squares, checks each
    int8 model against its fp32 counterpart on ``holdout_count`` other photos and keeps it only
    when the mean PSNR is >= ``min_psnr`` dB; speed is measured at ``bench_size`` (median of
    ``bench_runs``). ``mxnet_calib_mode``: 'naive' (min/max) or 'entropy' (slower).
    ``int8_backends``: which of ``("onnxruntime", "mxnet")`` to quantize for.

    ``style_image``: the painting, copied as ``style.jpg`` (longest side <= 512, JPEG quality 90);
    ``style_source`` / ``style_license``: free text for the card.

    Raises ``ConfigError`` (bad options or paths), ``CheckpointError`` (corrupt checkpoint),
    ``ExportError`` (the export failed its own checks); ``out_dir`` is then left untouched.
    """
    _check_name(name)
    out_dir = Path(out_dir) if out_dir is not None else Path("models") / name
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"{out_dir}: exists and is not a folder; choose another --out")
    if out_dir.name in ("", ".", ".."):
        raise ConfigError(f"{out_dir}: give a named folder for the model")
    if int8:
        calib_count = _check_positive_int("calib-count", calib_count)
        holdout_count = _check_positive_int("holdout-count", holdout_count)
        calib_size = _check_positive_int("calib-size", calib_size)
        bench_runs = _check_positive_int("bench-runs", bench_runs)
        bench_size = _check_positive_int("bench-size", bench_size)
        try:
            min_psnr = float(min_psnr)
        except (TypeError, ValueError):
            raise ConfigError(f"min-psnr must be a number of dB, not {min_psnr!r}") from None
        int8_backends = tuple(int8_backends)
        unknown = [b for b in int8_backends if b not in INT8_BACKENDS]
        if unknown or not int8_backends:
            raise ConfigError(f"int8 backends must be among {', '.join(INT8_BACKENDS)}, not {list(int8_backends)}")
        if mxnet_calib_mode not in ("naive", "entropy"):
            raise ConfigError(f"MXNet calibration mode must be 'naive' or 'entropy', not {mxnet_calib_mode!r}")
    style_pixels = None
    if style_image is not None:  # read it first: a bad file fails before minutes of work
        style_pixels = io.read_image(style_image)
        if max(style_pixels.shape[:2]) > STYLE_MAX_SIDE:
            style_pixels = io.resize_max_side(style_pixels, STYLE_MAX_SIDE)

    from ..training.checkpoint import read_checkpoint

    ckpt = resolve_checkpoint(source)
    state = read_checkpoint(ckpt)  # checks the sha256 of its files
    run = state.get("run") or {}
    arch = run.get("arch")
    if not arch:
        raise ConfigError(f"{ckpt}: its state.json names no generator architecture (state['run']['arch'])")

    calib_dir = None
    if int8 and calib is not None:
        if not os.path.isdir(calib):
            raise ConfigError(f"--calib {calib}: no such folder of photos")
        calib_dir = calib
    elif int8:
        data = (run.get("options") or {}).get("data")
        if not data or not os.path.isdir(data):
            raise ConfigError("int8 export needs real photos to calibrate on: pass --calib PHOTO_DIR"
                              + (f" (the run's training photos, {data}, are not here)" if data else ""))
        calib_dir = data

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.export-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        card = _export_into(tmp, ckpt, state, arch, name, out_dir, int8=int8, calib_dir=calib_dir,
                            calib_count=calib_count, calib_size=calib_size, holdout_count=holdout_count,
                            min_psnr=min_psnr, mxnet_calib_mode=mxnet_calib_mode, int8_backends=int8_backends,
                            style_pixels=style_pixels, style_source=style_source, style_license=style_license,
                            bench_size=bench_size, bench_runs=bench_runs, progress=progress, log=log)
        _install(tmp, out_dir, card)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return card


def _export_into(tmp, ckpt, state, arch, name, out_dir, *, int8, calib_dir, calib_count, calib_size,
                 holdout_count, min_psnr, mxnet_calib_mode, int8_backends, style_pixels, style_source,
                 style_license, bench_size, bench_runs, progress, log):
    import mxnet as mx

    from ..models import count_flops, count_params, get_model
    from ..training.checkpoint import load_checkpoint
    from . import quantize
    from .onnx_export import mxnet_to_onnx, ort_session, run_onnx

    generator = get_model(arch)
    load_checkpoint(ckpt, generator, ctx=mx.cpu())
    stride, min_size = int(generator.stride), int(generator.min_size)
    if int8 and (calib_size % stride or calib_size < min_size):
        raise ConfigError(f"calib-size must be a multiple of {stride} and at least {min_size} for {arch}, "
                          f"not {calib_size}")
    if int8 and (bench_size % stride or bench_size < min_size):
        raise ConfigError(f"bench-size must be a multiple of {stride} and at least {min_size} for {arch}")
    generator.hybridize()
    h1, w1 = _round_up(72, stride, min_size), _round_up(104, stride, min_size)   # non-square
    h2 = _round_up(64, stride, min_size)
    checks = [_sample(1, h1, w1, seed=1), _sample(2, h2, h2, seed=2)]             # and a batch of 2
    gluon_out = [generator(mx.nd.array(x)).asnumpy() for x in checks]

    # 1. MXNet symbol + params, reloaded and compared with the Gluon block
    prefix = str(tmp / name)
    generator.export(prefix, epoch=0)
    symbol_file, params_file = f"{name}-symbol.json", f"{name}-0000.params"
    block = quantize._import_block(prefix)
    symbol_diff = max(float(np.abs(block(mx.nd.array(x)).asnumpy() - g).max()) for x, g in zip(checks, gluon_out))
    if not symbol_diff < SYMBOL_TOLERANCE:
        raise ExportError(f"the exported MXNet symbol differs from the trained generator by {symbol_diff:.3g} "
                          f"(> {SYMBOL_TOLERANCE}); this is a bug in the export")
    log(f"MXNet symbol: {symbol_file}, {params_file} (reload max abs diff {symbol_diff:.2g})")

    # 2. ONNX, checked by onnx.checker (inside mxnet_to_onnx) and against MXNet at two sizes
    onnx_file = f"{name}.onnx"
    with quiet_onnx_deprecations():
        mxnet_to_onnx(prefix, tmp / onnx_file, sample_shape=(1, 3, h2, h2),
                      metadata={"mxstyle.name": name, "mxstyle.arch": arch, "mxstyle.version": __version__})
    session = ort_session(tmp / onnx_file)
    onnx_diffs = {f"{x.shape[0]}x3x{x.shape[2]}x{x.shape[3]}": float(np.abs(run_onnx(session, x) - g).max())
                  for x, g in zip(checks, gluon_out)}
    worst = max(onnx_diffs.values())
    if not worst < ONNX_TOLERANCE:
        raise ExportError(f"the ONNX model's output differs from MXNet's by {worst:.3g} on the 0-255 scale "
                          f"(> {ONNX_TOLERANCE}) at {onnx_diffs}; an operator exports wrongly (see docs/design.md, "
                          "export pitfalls)")
    log(f"ONNX opset {OPSET}: {onnx_file} (onnxruntime vs MXNet max abs diff {worst:.2g})")

    files = {"mxnet_fp32_symbol": file_record(tmp, symbol_file),
             "mxnet_fp32_params": file_record(tmp, params_file),
             "onnx_fp32": file_record(tmp, onnx_file)}

    # 3. int8
    quant = None
    if int8:
        calib, held, photo_names = quantize.load_calibration_photos(
            calib_dir, count=calib_count, holdout=holdout_count, size=calib_size, progress=progress, log=log)
        log(f"int8: calibrating on {len(calib)} photos, checking on {len(held)} held-out photos "
            f"({calib_size}x{calib_size}), bound {min_psnr:g} dB PSNR")
        quant = dict(calibration_photos=len(calib), held_out_photos=len(held), size=int(calib_size),
                     min_psnr_db=float(min_psnr), photo_files=photo_names,
                     photo_folder=os.path.basename(os.path.normpath(calib_dir)))
        common = dict(min_psnr=min_psnr, bench_size=bench_size, bench_runs=bench_runs, progress=progress, log=log)
        jobs = {
            "onnxruntime": lambda: quantize.quantize_onnx(tmp / onnx_file, tmp / f"{name}.int8.onnx", calib,
                                                          held, workdir=tmp, **common),
            "mxnet": lambda: quantize.quantize_mxnet(prefix, str(tmp / f"{name}-int8"), calib, held,
                                                     calib_mode=mxnet_calib_mode, **common),
        }
        roles = {"onnxruntime": [("onnx_int8", f"{name}.int8.onnx")],
                 "mxnet": [("mxnet_int8_symbol", f"{name}-int8-symbol.json"),
                           ("mxnet_int8_params", f"{name}-int8-0000.params")]}
        for backend in int8_backends:
            report = jobs[backend]()
            tried = ", ".join(f"{a['plan']}: {a['psnr_db_mean']:.1f} dB (min {a['psnr_db_min']:.1f})"
                              for a in report["attempts"])
            if report["kept"]:
                for role, filename in roles[backend]:
                    files[role] = dict(file_record(tmp, filename), fidelity=report["fidelity"],
                                       speedup_vs_fp32=report["speedup_vs_fp32"],
                                       quantization=dict(plan=report["plan"], **report["settings"]))
                s = report["speedup_vs_fp32"]
                log(f"{backend} int8 kept ({report['plan']}): PSNR {report['fidelity']['psnr_db_mean']:.1f} dB "
                    f"mean, {report['fidelity']['psnr_db_min']:.1f} min; {s['speedup']:.2f}x fp32 at "
                    f"{s['size']}x{s['size']} ({s['fp32_seconds']:.3f} s -> {s['int8_seconds']:.3f} s)"
                    + (" -- slower than fp32 on this machine" if s["speedup"] and s["speedup"] < 1 else ""))
            else:
                log(f"{backend} int8 NOT written: below the {min_psnr:g} dB fidelity bound ({tried})")
            quant[backend] = dict(kept=report["kept"], attempts=report["attempts"])

    # 4. style image
    if style_pixels is not None:
        io.write_image(tmp / STYLE_FILE, style_pixels, quality=90)
        files["style_image"] = file_record(tmp, STYLE_FILE)
    elif (out_dir / STYLE_FILE).is_file():
        files["style_image"] = file_record(out_dir, STYLE_FILE)  # kept from an earlier export,
        try:                                                     # with its source and license
            old_style = read_card(out_dir).get("style") or {}
        except ModelError:
            old_style = {}
        style_source = style_source if style_source is not None else old_style.get("source")
        style_license = style_license if style_license is not None else old_style.get("license")

    # 5. the card
    run = state.get("run") or {}
    options = run.get("options") or {}
    flop_net = get_model(arch)
    card = {
        "format": CARD_FORMAT,
        "name": name,
        "arch": arch,
        "stride": stride,
        "min_size": min_size,
        "flops_per_pixel": count_flops(flop_net, 64, 64) / (64 * 64),
        "params": int(count_params(flop_net)),
        "input": {"name": INPUT_NAME, "output": OUTPUT_NAME, "layout": "NCHW", "channels": "RGB",
                  "dtype": "float32", "range": [0, 255], "onnx_opset": OPSET},
        "style": {"image": STYLE_FILE if "style_image" in files else None, "source": style_source,
                  "license": style_license,
                  "file": os.path.basename(options["style"]) if options.get("style") else None,
                  "sha256": run.get("style_sha256")},
        "training": {"steps": state.get("step"), "planned_steps": options.get("steps"),
                     "checkpoint": Path(ckpt).name, "loss_config": run.get("loss_config"),
                     "options": sanitize_options(options), "data_files": run.get("data_files"),
                     "init_from": _init_record(run.get("init_from"))},
        "files": files,
        "verification": {"symbol_vs_gluon_max_abs": symbol_diff, "onnxruntime_vs_mxnet_max_abs": onnx_diffs,
                         "tolerance_0_255": ONNX_TOLERANCE},
        "created": datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()
                   .replace("+00:00", "Z"),
        "mxstyle_version": __version__,
    }
    if quant is not None:
        card["quantization"] = quant
    (tmp / CARD_FILE).write_text(json.dumps(card, indent=1) + "\n")
    return card


def _install(tmp, out_dir, card):
    """Move the checked files from ``tmp`` into ``out_dir``: a rename, or file by file, card last."""
    _fsync_tree(tmp)
    new_files = [rec["path"] for role, rec in card["files"].items()
                 if (tmp / rec["path"]).is_file()]  # style.jpg may be the one already in out_dir
    if not out_dir.exists():
        os.rename(tmp, out_dir)
        _fsync_dir(out_dir.parent)
        return
    old_files = []
    try:
        old_files = [rec.get("path") for rec in read_card(out_dir)["files"].values() if isinstance(rec, dict)]
    except ModelError:
        pass
    for filename in new_files:
        os.replace(tmp / filename, out_dir / filename)
    os.replace(tmp / CARD_FILE, out_dir / CARD_FILE)
    keep = set(new_files) | {STYLE_FILE, CARD_FILE}
    for filename in old_files:  # files of the previous export that this one no longer has
        if filename and filename not in keep and "/" not in filename and (out_dir / filename).is_file():
            (out_dir / filename).unlink()
    _fsync_dir(out_dir)
