"""``export_model``: one training checkpoint -> a self-describing model folder.

Written into ``out_dir`` (see :mod:`mxstyle.export` for the card)::

    NAME-symbol.json, NAME-0000.params        MXNet symbolic model, fp32 (gluon.SymbolBlock.imports)
    NAME.onnx                                 ONNX opset 13, dynamic N/H/W, input 'data', output 'stylized'
    NAME.int8.onnx                            with int8=True, if onnxruntime int8 passes the fidelity bound
    NAME-int8-symbol.json, NAME-int8-0000.params   with int8=True, if MXNet int8 passes it
    (bf16=True writes no file: the card records whether OpenVINO's bf16 passes the same bound)
    style.jpg                                 with style_image=..., or kept from an earlier export
    model.json                                the model card: every file with its sha256 and size

The settings are an :class:`~mxstyle.export.options.ExportOptions`. Everything is written into a
temporary folder beside ``out_dir`` and checked there; only then are the files moved into
``out_dir`` (a rename when it does not exist yet; otherwise file by file, the card last). A
failure or interrupt before that leaves ``out_dir`` as it was. An interrupt during the file-by-file
move can leave new files under the old card: the runtime then refuses them (sha256), and
exporting again repairs the folder.
"""
import datetime
import json
import os
import re
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from .. import __version__, io
from ..errors import ConfigError, MxstyleError
from ..files import fsync_path, fsync_tree, rename_into_place, write_text_atomic
from ..values import round_up
from ..model_folder import CARD_FILE, CARD_FORMAT, ModelError, file_record, read_card
from .onnx_export import INPUT_NAME, OPSET, OUTPUT_NAME, quiet_onnx_deprecations
from .options import ExportOptions

__all__ = ["ExportError", "ExportOptions", "export_model", "resolve_checkpoint", "sanitize_options"]

STYLE_FILE = "style.jpg"
STYLE_MAX_SIDE = 512
#: onnxruntime vs MXNet on the 0-255 scale. MXNet's own InstanceNorm is the less accurate of the two.
ONNX_TOLERANCE = 2e-2
#: The exported symbol reloaded vs the Gluon block it came from.
SYMBOL_TOLERANCE = 1e-3
#: Options of a run that are local paths: only their file names go into the card.
PATH_OPTIONS = ("style", "data", "preview", "vgg_weights")
#: Options of a run that say nothing about the model.
DROPPED_OPTIONS = ("out", "resume", "progress", "workers")
#: The card's roles and file names of each int8 backend's files (``{name}``: the model name).
INT8_FILES = {"onnxruntime": (("onnx_int8", "{name}.int8.onnx"),),
              "mxnet": (("mxnet_int8_symbol", "{name}-int8-symbol.json"),
                        ("mxnet_int8_params", "{name}-int8-0000.params"))}
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

    Paths are reduced to their file names (``../data/styles/x.jpg`` -> ``x.jpg``);
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


def _lineage_record(job):
    """``lineage`` (every leg of training, oldest first; mxstyle.training.checkpoint.lineage) and
    ``total_steps`` (their sum; None when the record of the first leg was not found)."""
    from ..training.checkpoint import lineage

    legs = lineage(job.ckpt, job.state)
    complete = all("record" not in leg for leg in legs)
    return dict(lineage=legs, total_steps=sum(leg["steps"] for leg in legs) if complete else None)


def _check_name(name):
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ConfigError(f"model name {name!r} must be 1-100 letters, digits, '.', '_' or '-' "
                          "(starting with a letter or digit)")
    return name


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


@dataclass
class _Export:
    """One export under way: what it exports, where to, and what its steps recorded for the card."""

    name: str
    out_dir: Path
    tmp: Path                       # the temporary folder the files are written and checked in
    ckpt: Path
    state: dict                     # the checkpoint's state.json
    calib_dir: Optional[str]        # photos to calibrate int8 on (int8 only)
    style_pixels: Optional[np.ndarray]
    log: Callable
    files: dict = field(default_factory=dict)          # card role -> file record
    verification: dict = field(default_factory=dict)
    quantization: Optional[dict] = None
    bf16: Optional[dict] = None
    style: dict = field(default_factory=dict)          # the card's style source and license

    @property
    def run(self):
        return self.state.get("run") or {}

    @property
    def arch(self):
        return self.run["arch"]

    @property
    def prefix(self):
        """The MXNet fp32 symbol/params prefix inside ``tmp``."""
        return str(self.tmp / self.name)


def export_model(source, name, out_dir=None, options=None, *, log=print, **overrides):
    """Export checkpoint ``source`` (a run folder or a checkpoint folder) as model ``name``.

    Writes into ``out_dir`` (default ``models/NAME``) the files listed in the module docstring
    and returns the model card (also written as ``out_dir/model.json``). ``options``: an
    :class:`ExportOptions` (default: its defaults); keyword ``overrides`` set its fields, e.g.
    ``export_model(run, "name", out, int8=True, calib="photos/")``. ``log`` gets each message.

    Raises ``ConfigError`` (bad options or paths), ``CheckpointError`` (corrupt checkpoint),
    ``ExportError`` (the export failed its own checks); ``out_dir`` is then left untouched.
    """
    _check_name(name)
    out_dir = _model_folder(name, out_dir)
    options = ExportOptions.build(options, **overrides)
    style_pixels = _read_style_image(options)
    ckpt, state = _read_checkpoint(source)
    calib_dir = _calibration_folder(options, state) if options.int8 or options.bf16 else None

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.export-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        job = _Export(name=name, out_dir=out_dir, tmp=tmp, ckpt=ckpt, state=state, calib_dir=calib_dir,
                      style_pixels=style_pixels, log=log)
        card = _export_into(job, options)
        _install(tmp, out_dir, card)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return card


def _model_folder(name, out_dir):
    """``out_dir`` as a Path (default ``models/NAME``), refused when it cannot be a model folder."""
    out_dir = Path(out_dir) if out_dir is not None else Path("models") / name
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"{out_dir}: exists and is not a folder; choose another --out")
    if out_dir.name in ("", ".", ".."):
        raise ConfigError(f"{out_dir}: give a named folder for the model")
    return out_dir


def _read_style_image(options):
    """The painting's pixels (longest side <= 512), or None; read first, so a bad file fails early."""
    if options.style_image is None:
        return None
    pixels = io.read_image(options.style_image)
    if max(pixels.shape[:2]) > STYLE_MAX_SIDE:
        pixels = io.resize_max_side(pixels, STYLE_MAX_SIDE)
    return pixels


def _read_checkpoint(source):
    """``(checkpoint folder, its state)``, the sha256 of its files checked; the state must name an arch."""
    from ..training.checkpoint import read_checkpoint

    ckpt = resolve_checkpoint(source)
    state = read_checkpoint(ckpt)
    if not (state.get("run") or {}).get("arch"):
        raise ConfigError(f"{ckpt}: its state.json names no generator architecture (state['run']['arch'])")
    return ckpt, state


def _calibration_folder(options, state):
    """The int8 calibration photos: ``options.calib``, else the run's training photos if they are here."""
    if options.calib is not None:
        if not os.path.isdir(options.calib):
            raise ConfigError(f"--calib {options.calib}: no such folder of photos")
        return options.calib
    data = ((state.get("run") or {}).get("options") or {}).get("data")
    if not data or not os.path.isdir(data):
        raise ConfigError("int8 export needs real photos to calibrate on: pass --calib PHOTO_DIR"
                          + (f" (the run's training photos, {data}, are not here)" if data else ""))
    return data


def _export_into(job, options):
    """Write and check every model file in ``job.tmp``, step by step; returns the card."""
    generator = _load_generator(job, options)
    samples, references = _reference_outputs(generator)
    _export_symbol(job, generator, samples, references)
    _export_onnx(job, samples, references)
    if options.int8 or options.bf16:
        _export_reduced_precision(job, options)
    _add_style_image(job, options)
    return _card(job, generator)


def _load_generator(job, options):
    """The checkpoint's generator, loaded and hybridized; the int8 sizes must suit its stride."""
    import mxnet as mx

    from ..models import get_model
    from ..training.checkpoint import load_checkpoint

    generator = get_model(job.arch)
    load_checkpoint(job.ckpt, generator, ctx=mx.cpu())
    stride, min_size = int(generator.stride), int(generator.min_size)
    if (options.int8 or options.bf16) and (options.calib_size % stride or options.calib_size < min_size):
        raise ConfigError(f"calib-size must be a multiple of {stride} and at least {min_size} for {job.arch}, "
                          f"not {options.calib_size}")
    if (options.int8 or options.bf16) and (options.bench_size % stride or options.bench_size < min_size):
        raise ConfigError(f"bench-size must be a multiple of {stride} and at least {min_size} for {job.arch}")
    generator.hybridize()
    return generator


def _reference_outputs(generator):
    """Check inputs (a non-square image, a square batch of 2) and the generator's outputs on them."""
    import mxnet as mx

    stride, min_size = int(generator.stride), int(generator.min_size)
    h1, w1, h2 = (max(min_size, round_up(side, stride)) for side in (72, 104, 64))
    samples = [_sample(1, h1, w1, seed=1), _sample(2, h2, h2, seed=2)]
    return samples, [generator(mx.nd.array(x)).asnumpy() for x in samples]


def _export_symbol(job, generator, samples, references):
    """MXNet symbol + params, reloaded with SymbolBlock and compared with the Gluon block."""
    import mxnet as mx

    from .quantize import import_block

    generator.export(job.prefix, epoch=0)
    symbol_file, params_file = f"{job.name}-symbol.json", f"{job.name}-0000.params"
    block = import_block(job.prefix)
    diff = max(float(np.abs(block(mx.nd.array(x)).asnumpy() - g).max()) for x, g in zip(samples, references))
    if not diff < SYMBOL_TOLERANCE:
        raise ExportError(f"the exported MXNet symbol differs from the trained generator by {diff:.3g} "
                          f"(> {SYMBOL_TOLERANCE}); this is a bug in the export")
    job.log(f"MXNet symbol: {symbol_file}, {params_file} (reload max abs diff {diff:.2g})")
    job.files["mxnet_fp32_symbol"] = file_record(job.tmp, symbol_file)
    job.files["mxnet_fp32_params"] = file_record(job.tmp, params_file)
    job.verification["symbol_vs_gluon_max_abs"] = diff


def _export_onnx(job, samples, references):
    """ONNX, checked by onnx.checker (inside mxnet_to_onnx) and against MXNet on ``samples``."""
    from .onnx_export import mxnet_to_onnx, ort_session, run_onnx

    onnx_file = f"{job.name}.onnx"
    with quiet_onnx_deprecations():
        mxnet_to_onnx(job.prefix, job.tmp / onnx_file, sample_shape=(1,) + samples[1].shape[1:],
                      metadata={"mxstyle.name": job.name, "mxstyle.arch": job.arch,
                                "mxstyle.version": __version__})
    session = ort_session(job.tmp / onnx_file)
    diffs = {f"{x.shape[0]}x3x{x.shape[2]}x{x.shape[3]}": float(np.abs(run_onnx(session, x) - g).max())
             for x, g in zip(samples, references)}
    worst = max(diffs.values())
    if not worst < ONNX_TOLERANCE:
        raise ExportError(f"the ONNX model's output differs from MXNet's by {worst:.3g} on the 0-255 scale "
                          f"(> {ONNX_TOLERANCE}) at {diffs}; an operator exports wrongly (see docs/design.md, "
                          "export pitfalls)")
    job.log(f"ONNX opset {OPSET}: {onnx_file} (onnxruntime vs MXNet max abs diff {worst:.2g})")
    job.files["onnx_fp32"] = file_record(job.tmp, onnx_file)
    job.verification["onnxruntime_vs_mxnet_max_abs"] = diffs


def _export_reduced_precision(job, options):
    """Loads the calibration and held-out photos, then quantizes for each of
    ``options.int8_backends`` (``int8``) and checks OpenVINO bf16 (``bf16``)."""
    from .bf16 import check_openvino_bf16
    from .quantize import load_calibration_photos

    calib, held, photo_names = load_calibration_photos(
        job.calib_dir, count=options.calib_count if options.int8 else 0, holdout=options.holdout_count,
        size=options.calib_size, progress=options.progress, log=job.log)
    photos = dict(held_out_photos=len(held), size=int(options.calib_size), min_psnr_db=float(options.min_psnr),
                  photo_folder=os.path.basename(os.path.normpath(job.calib_dir)))
    if options.int8:
        job.log(f"int8: calibrating on {len(calib)} photos, checking on {len(held)} held-out photos "
                f"({options.calib_size}x{options.calib_size}), bound {options.min_psnr:g} dB PSNR")
        job.quantization = dict(calibration_photos=len(calib), **photos, photo_files=photo_names)
        for backend in options.int8_backends:
            job.quantization[backend] = _quantize_for(backend, job, options, calib, held)
    if options.bf16:
        job.bf16 = dict(photos, photo_files=photo_names["held_out"],
                        openvino=check_openvino_bf16(job.tmp / f"{job.name}.onnx", held, min_psnr=options.min_psnr,
                                                     bench_size=options.bench_size, bench_runs=options.bench_runs,
                                                     log=job.log))


def _quantize_for(backend, job, options, calib, held):
    """int8 for one backend; its files join the card only if they pass the fidelity bound and
    measure faster than fp32. Returns the card's record: ``kept``, the ``attempts``, the plans
    ``skipped`` and, once a plan passed, ``speedup_vs_fp32``."""
    from . import quantize

    common = dict(min_psnr=options.min_psnr, min_speedup=options.min_speedup, bench_size=options.bench_size,
                  bench_runs=options.bench_runs, progress=options.progress, log=job.log)
    if backend == "onnxruntime":
        report = quantize.quantize_onnx(job.tmp / f"{job.name}.onnx", job.tmp / f"{job.name}.int8.onnx", calib,
                                        held, workdir=job.tmp, **common)
    else:
        report = quantize.quantize_mxnet(job.prefix, f"{job.prefix}-int8", calib, held,
                                         calib_mode=options.mxnet_calib_mode, **common)
    tried = ", ".join(f"{a['plan']}: {a['psnr_db_mean']:.1f} dB (min {a['psnr_db_min']:.1f})"
                      for a in report["attempts"])
    skipped = "".join(f"; {s['plan']} not tried: {s['reason']}" for s in report["skipped"])
    s = report.get("speedup_vs_fp32")
    speed = (f"{s['speedup']:.2f}x fp32 at {s['size']}x{s['size']} ({s['fp32_seconds']:.3f} s -> "
             f"{s['int8_seconds']:.3f} s)") if s else None
    if report["kept"]:
        for role, filename in INT8_FILES[backend]:
            job.files[role] = dict(file_record(job.tmp, filename.format(name=job.name)),
                                   fidelity=report["fidelity"], speedup_vs_fp32=s,
                                   quantization=dict(plan=report["plan"], **report["settings"]))
        job.log(f"{backend} int8 kept ({report['plan']}): PSNR {report['fidelity']['psnr_db_mean']:.1f} dB "
                f"mean, {report['fidelity']['psnr_db_min']:.1f} min; {speed}")
    elif s:
        job.log(f"{backend} int8 NOT written: {report['plan']} passes the fidelity bound but is not "
                f"{options.min_speedup:g}x as fast as fp32 on this machine: {speed}")
    else:
        job.log(f"{backend} int8 NOT written: below the {options.min_psnr:g} dB fidelity bound ({tried}{skipped})")
    return {k: report[k] for k in ("kept", "attempts", "skipped", "plan", "speedup_vs_fp32") if k in report}


def _add_style_image(job, options):
    """style.jpg: the given painting, or the one already in ``out_dir`` with its card's source and license."""
    source, license_ = options.style_source, options.style_license
    if job.style_pixels is not None:
        io.write_image(job.tmp / STYLE_FILE, job.style_pixels, quality=90)
        job.files["style_image"] = file_record(job.tmp, STYLE_FILE)
    elif (job.out_dir / STYLE_FILE).is_file():
        job.files["style_image"] = file_record(job.out_dir, STYLE_FILE)
        try:
            old_style = read_card(job.out_dir).get("style") or {}
        except ModelError:
            old_style = {}
        source = source if source is not None else old_style.get("source")
        license_ = license_ if license_ is not None else old_style.get("license")
    job.style = dict(source=source, license=license_)


def _card(job, generator):
    """The model card: what the steps recorded, and the run the checkpoint comes from."""
    from ..models import count_flops, count_params, get_model

    run = job.run
    options = run.get("options") or {}
    flop_net = get_model(job.arch)
    card = {
        "format": CARD_FORMAT,
        "name": job.name,
        "arch": job.arch,
        "stride": int(generator.stride),
        "min_size": int(generator.min_size),
        "flops_per_pixel": count_flops(flop_net, 64, 64) / (64 * 64),
        "params": int(count_params(flop_net)),
        "input": {"name": INPUT_NAME, "output": OUTPUT_NAME, "layout": "NCHW", "channels": "RGB",
                  "dtype": "float32", "range": [0, 255], "onnx_opset": OPSET},
        "style": {"image": STYLE_FILE if "style_image" in job.files else None, "source": job.style["source"],
                  "license": job.style["license"],
                  "file": os.path.basename(options["style"]) if options.get("style") else None,
                  "sha256": run.get("style_sha256")},
        "training": {"steps": job.state.get("step"), "planned_steps": options.get("steps"),
                     "checkpoint": Path(job.ckpt).name, "loss_config": run.get("loss_config"),
                     "options": sanitize_options(options), "data_files": run.get("data_files"),
                     "init_from": _init_record(run.get("init_from")), **_lineage_record(job)},
        "files": job.files,
        "verification": dict(job.verification, tolerance_0_255=ONNX_TOLERANCE),
        "created": datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()
                   .replace("+00:00", "Z"),
        "mxstyle_version": __version__,
    }
    if job.quantization is not None:
        card["quantization"] = job.quantization
    if job.bf16 is not None:
        card["bf16"] = job.bf16
    return card


def _install(tmp, out_dir, card):
    """Write the card and move the checked files from ``tmp`` into ``out_dir``: a rename of the
    whole folder when ``out_dir`` does not exist, otherwise file by file, the card last."""
    text = json.dumps(card, indent=1) + "\n"
    if not out_dir.exists():
        (tmp / CARD_FILE).write_text(text)
        rename_into_place(tmp, out_dir)  # flushes tmp's files before the rename
        return
    fsync_tree(tmp)
    new_files = [rec["path"] for rec in card["files"].values()
                 if (tmp / rec["path"]).is_file()]  # style.jpg may be the one already in out_dir
    old_files = []
    try:
        old_files = [rec.get("path") for rec in read_card(out_dir)["files"].values() if isinstance(rec, dict)]
    except ModelError:
        pass
    for filename in new_files:
        os.replace(tmp / filename, out_dir / filename)
    write_text_atomic(out_dir / CARD_FILE, text)
    keep = set(new_files) | {STYLE_FILE, CARD_FILE}
    for filename in old_files:  # files of the previous export that this one no longer has
        if filename and filename not in keep and "/" not in filename and (out_dir / filename).is_file():
            (out_dir / filename).unlink()
    fsync_path(out_dir, strict=False)
