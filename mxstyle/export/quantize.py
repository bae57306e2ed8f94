"""Post-training int8 quantization of an exported generator, calibrated on real photos.

Two backends, each checked against its own fp32 model on held-out photos (PSNR, 0-255 scale):

- onnxruntime static quantization (QOperator format: QLinearConv etc., per-channel int8 weights,
  uint8 activations, percentile calibration: see :data:`ORT_CALIBRATION`) after
  ``quant_pre_process``;
- MXNet oneDNN quantization (``quantize_net_v2``, naive or entropy calibration), saved as a
  symbol + params pair that ``gluon.SymbolBlock.imports`` loads.

Each backend searches :data:`PLANS` (:func:`search_plans`: the safest first, the faster ones only
when the safest passes with room to spare) and keeps the fastest plan whose output stays within
the fidelity bound, and only when it measures faster than fp32 (``min_speedup``); otherwise
nothing is written for that backend.

onnxruntime gets ``reduce_range=True`` (7-bit weights): without VNNI, its uint8 x int8 kernels
saturate int16 pair sums (docs/design.md, "int8 quantization", has the measurements).
"""
import contextlib
import inspect
import logging
import os
import random
import time
import warnings

import numpy as np

from .. import io
from ..errors import ConfigError, ImageError
from ..quality import psnr
from ..system import usable_cpus
from .onnx_export import INPUT_NAME, ort_session, run_onnx
from .options import MXNET_CALIB_MODES

__all__ = ["PLANS", "PSNR_CAP_DB", "FASTER_PLAN_MARGIN_DB", "search_plans", "load_calibration_photos",
           "quantize_onnx", "quantize_mxnet",
           "median_seconds", "import_block"]

#: Quantization plans tried in order: every quantizable op; with the first and last convolutions
#: (full-resolution, 3 channels in or out) kept in fp32; and only the convolutions of the encoder
#: and residual blocks in int8, the decoder (every conv from the first upsampling on) in fp32,
#: since the decoder convs are the int8-sensitive ones (per-layer PSNR: docs/design.md).
PLANS = (
    dict(name="all", keep_fp32=(), convs_only=False),
    dict(name="first-last-conv-fp32", keep_fp32=("first_conv", "last_conv"), convs_only=False),
    dict(name="encoder-convs", keep_fp32=("decoder_convs",), convs_only=True),
)
UPSAMPLING_OPS = ("Resize", "Upsample", "UpSampling")

#: The plans are nested: each keeps more layers in fp32 than the one before. On every int8 export
#: of the shipped johnson and johnson_s8 models (5 models x 2 backends) the last plan's minimum
#: PSNR measured 2.3-7.2 dB above the other two's, and only the last ever passed 35 dB. So the last
#: plan is calibrated first; the faster plans only when it passes by more than this margin.
FASTER_PLAN_MARGIN_DB = 2.0

#: onnxruntime activation ranges: the 99.99th percentile of |x| over the calibration photos, not
#: the min/max, which a few extreme activations stretch for every other pixel (docs/design.md).
ORT_CALIBRATION = dict(method="Percentile", percentile=99.99)


def _plan_excludes(plan, nodes, conv_op):
    """Names of the layers ``plan`` keeps in fp32, from ``[(name, op)]`` in topological order."""
    convs = [name for name, op in nodes if op == conv_op]
    if not convs:
        return []
    first_up = next((i for i, (_, op) in enumerate(nodes) if op in UPSAMPLING_OPS), len(nodes))
    groups = {"first_conv": [convs[0]], "last_conv": [convs[-1]],
              "decoder_convs": [name for name, op in nodes[first_up:] if op == conv_op] + [convs[-1]]}
    names = []
    for key in plan["keep_fp32"]:
        for name in groups[key]:
            if name not in names:
                names.append(name)
    return names
def search_plans(attempt, min_psnr):
    """The fastest plan of :data:`PLANS` that keeps ``min_psnr``, calibrating as few as possible.

    ``attempt(plan)`` quantizes with one plan (leaving its files aside) and returns its fidelity
    dict. Returns ``(plan or None, attempts, skipped)``: the attempts in the order made, and the
    plans not tried with the reason.
    """
    safest = PLANS[-1]
    fidelity = attempt(safest)
    attempts = [dict(plan=safest["name"], psnr_db_mean=fidelity["psnr_db_mean"], psnr_db_min=fidelity["psnr_db_min"])]
    faster = PLANS[:-1]
    if fidelity["psnr_db_min"] < min_psnr:
        why = f"the safest plan ({safest['name']}) misses the bound; these quantize more layers"
        return None, attempts, [dict(plan=p["name"], reason=why) for p in faster]
    if fidelity["psnr_db_min"] < min_psnr + FASTER_PLAN_MARGIN_DB:
        why = (f"the safest plan passes by less than {FASTER_PLAN_MARGIN_DB:g} dB, the smallest gap measured "
               "between it and these")
        return safest, attempts, [dict(plan=p["name"], reason=why) for p in faster]
    for i, plan in enumerate(faster):
        fidelity = attempt(plan)
        attempts.append(dict(plan=plan["name"], psnr_db_mean=fidelity["psnr_db_mean"],
                             psnr_db_min=fidelity["psnr_db_min"]))
        if fidelity["psnr_db_min"] >= min_psnr:
            return plan, attempts, [dict(plan=p["name"], reason=f"{plan['name']}, faster, passed")
                                    for p in faster[i + 1:]]
    return safest, attempts, []


#: PSNR of identical outputs is infinite; the card stores at most this.
PSNR_CAP_DB = 100.0





def _bar(total, desc, progress):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="photo", disable=not progress, dynamic_ncols=True, leave=False)


def _square(img, size):
    """Scale the shorter side to ``size`` and crop the centre ``size x size``; -> 1x3xSxS."""
    h, w = img.shape[:2]
    k = size / min(h, w)
    img = io.resize(img, (max(size, round(h * k)), max(size, round(w * k))))
    h, w = img.shape[:2]
    y, x = (h - size) // 2, (w - size) // 2
    return io.to_tensor(img[y:y + size, x:x + size])


def load_calibration_photos(folder, *, count=16, holdout=4, size=512, seed=0, progress=True, log=print):
    """Calibration and held-out photos from ``folder`` (recursive), as 1x3xSxS float32 arrays.

    The photo list is shuffled with ``seed``; the first ``holdout`` readable photos are held out
    for the fidelity check, the next ``count`` calibrate. With fewer photos, a quarter (at least
    one) is held out. Unreadable photos are skipped with a message. Returns ``(calib, held, names)``
    where ``names`` is ``{"calibration": [...], "held_out": [...]}`` (file names only).
    """
    from ..data import list_images

    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise ConfigError(f"calibration photo folder {folder!r} does not exist; pass --calib PHOTO_DIR")
    try:
        paths = list_images(folder)
    except ConfigError:
        raise ConfigError(f"no photos in {folder!r} to calibrate int8 models on; pass --calib PHOTO_DIR "
                          "with a few real photos") from None
    random.Random(seed).shuffle(paths)
    want_hold = max(1, min(holdout, len(paths) // 4)) if len(paths) < count + holdout else holdout
    want = want_hold + count
    arrays, names = [], []
    with _bar(min(want, len(paths)), "load calibration photos", progress) as bar:
        for path in paths:
            if len(arrays) >= want:
                break
            try:
                arrays.append(_square(io.read_image(path), size))
                names.append(os.path.basename(path))
                bar.update(1)
            except ImageError as exc:
                log(f"skipping calibration photo: {exc}")
    if len(arrays) < 2:
        raise ConfigError(f"{folder!r} has {len(arrays)} readable photo(s); int8 calibration needs at least 2 "
                          "(some to calibrate on, some to check the result on)")
    hold = want_hold if len(arrays) >= want else max(1, len(arrays) // 4)
    return (arrays[hold:], arrays[:hold],
            {"calibration": names[hold:], "held_out": names[:hold]})


@contextlib.contextmanager
def _quiet_logging(level=logging.ERROR):
    """onnxruntime's quantizer warns through the root logger (pre-processing advice and the like)."""
    root = logging.getLogger()
    old = root.level
    root.setLevel(level)
    try:
        yield
    finally:
        root.setLevel(old)


def median_seconds(fns, x, runs=5):
    """Median wall time of each callable in ``fns`` on ``x``; runs are interleaved (a, b, a, b...)
    after one warm-up of each, so a machine whose load drifts affects both alike."""
    for fn in fns:
        fn(x)
    times = [[] for _ in fns]
    for _ in range(runs):
        for fn, t in zip(fns, times):
            t0 = time.perf_counter()
            fn(x)
            t.append(time.perf_counter() - t0)
    return [float(np.median(t)) for t in times]


def _bench_input(size):
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    img = np.stack([128 + 100 * np.sin(x / 17.0), 128 + 100 * np.cos(y / 13.0), 255 * x / size], 0)
    return img[None].astype(np.float32)


def _fidelity(outputs, references, size, min_psnr):
    values = [psnr(o, r, cap=PSNR_CAP_DB) for o, r in zip(outputs, references)]
    return dict(psnr_db_mean=round(float(np.mean(values)), 3), psnr_db_min=round(float(np.min(values)), 3),
                photos=len(values), size=int(size), min_psnr_db=float(min_psnr))


# --------------------------------------------------------------------------- onnxruntime

def quantize_onnx(fp32_path, out_path, calib, held, *, min_psnr=35.0, min_speedup=1.1, bench_size=512,
                  bench_runs=5, progress=True, log=print, workdir=None):
    """Quantize ``fp32_path`` to ``out_path`` (onnxruntime QOperator int8); returns a report dict.

    The report has ``kept`` (bool), ``plan``, ``fidelity`` (vs the fp32 model on ``held``), the
    ``attempts``, the ``skipped`` plans and, once a plan passed, ``speedup_vs_fp32``. ``out_path``
    exists only when kept: within ``min_psnr`` and at least ``min_speedup`` times fp32's speed.
    """
    import onnx
    from onnxruntime import quantization as q
    from onnxruntime.quantization.shape_inference import quant_pre_process

    workdir = os.fspath(workdir or os.path.dirname(os.fspath(out_path)))
    pre = os.path.join(workdir, ".pre-quant.onnx")
    trials = {p["name"]: os.path.join(workdir, f".int8-trial-{p['name']}.onnx") for p in PLANS}
    ranges, scratch = os.path.join(workdir, ".int8-ranges.json"), os.path.join(workdir, ".int8-scratch.onnx")
    fp32 = ort_session(fp32_path)
    references = [run_onnx(fp32, x) for x in held]
    settings, fidelities = {}, {}
    try:
        with _quiet_logging():
            quant_pre_process(os.fspath(fp32_path), pre, skip_symbolic_shape=True)
        nodes = [(n.name, n.op_type) for n in onnx.load(pre).graph.node]

        # onnxruntime >= 1.2x can keep the ranges it calibrated (calibration_cache_path): then the
        # photos run once, over every tensor (a superset of what any plan quantizes; a tensor's
        # percentile does not depend on the others), and each plan only quantizes with them
        reuse = "calibration_cache_path" in inspect.signature(q.quantize_static).parameters

        def quantize(out, exclude, op_types, reader):
            with _quiet_logging():
                q.quantize_static(
                    pre, out, reader, quant_format=q.QuantFormat.QOperator, per_channel=True,
                    reduce_range=True, activation_type=q.QuantType.QUInt8, weight_type=q.QuantType.QInt8,
                    calibrate_method=getattr(q.CalibrationMethod, ORT_CALIBRATION["method"]),
                    nodes_to_exclude=exclude, op_types_to_quantize=op_types,
                    extra_options=dict(CalibPercentile=ORT_CALIBRATION["percentile"], CalibStridedMinMax=1),
                    **(dict(calibration_cache_path=ranges) if reuse else {}))
            # (Do not pass CalibMaxIntermediateOutputs: onnxruntime 1.32 then drops the data.)

        def calibrate(out, exclude, op_types, label):
            bar = _bar(len(calib), f"calibrate onnxruntime int8 ({label})", progress)
            try:
                quantize(out, exclude, op_types, _OrtReader(calib, bar))
            finally:
                bar.close()

        def attempt(plan):
            exclude = _plan_excludes(plan, nodes, "Conv")
            op_types = ["Conv"] if plan["convs_only"] else None
            settings[plan["name"]] = dict(
                quant_format="QOperator", per_channel=True, reduce_range=True, activation_type="QUInt8",
                weight_type="QInt8", calibrate_method=ORT_CALIBRATION["method"],
                percentile=ORT_CALIBRATION["percentile"], nodes_to_exclude=exclude, op_types_to_quantize=op_types)
            if not reuse:
                calibrate(trials[plan["name"]], exclude, op_types, plan["name"])
            else:
                if not os.path.exists(ranges):
                    calibrate(scratch, [], None, "every tensor, once")
                quantize(trials[plan["name"]], exclude, op_types, None)
            int8 = ort_session(trials[plan["name"]])
            fidelities[plan["name"]] = _fidelity([run_onnx(int8, x) for x in held], references, held[0].shape[-1],
                                                 min_psnr)
            return fidelities[plan["name"]]

        plan, attempts, skipped = search_plans(attempt, min_psnr)
        report = dict(kept=False, backend="onnxruntime", fidelity=None, attempts=attempts, skipped=skipped,
                      min_psnr_db=float(min_psnr))
        if plan is None:
            return report
        int8 = ort_session(trials[plan["name"]])
        x = _bench_input(bench_size)
        t_fp32, t_int8 = median_seconds([lambda a: run_onnx(fp32, a), lambda a: run_onnx(int8, a)], x, bench_runs)
        report.update(plan=plan["name"], settings=settings[plan["name"]],
                      fidelity=fidelities[plan["name"]],
                      speedup_vs_fp32=_speed("onnxruntime", bench_size, bench_runs, t_fp32, t_int8))
        if report["speedup_vs_fp32"]["speedup"] >= min_speedup:
            os.replace(trials[plan["name"]], out_path)
            report["kept"] = True
        return report
    finally:
        for path in (pre, ranges, scratch, *trials.values()):
            if os.path.exists(path):
                os.remove(path)


def _speed(backend, size, runs, t_fp32, t_int8):
    return dict(backend=backend, size=int(size), runs=int(runs), threads=usable_cpus(),
                fp32_seconds=round(t_fp32, 4), int8_seconds=round(t_int8, 4),
                speedup=round(t_fp32 / t_int8, 3) if t_int8 > 0 else None)


class _OrtReader:
    """onnxruntime CalibrationDataReader over a list of arrays, advancing a progress bar.

    ``len`` and ``set_range`` let onnxruntime calibrate one photo at a time (``CalibStridedMinMax``,
    which despite its name chunks every method): the percentile calibrator otherwise holds every
    activation of every photo at once (19.8 GB peak RSS for 16 photos at 512 px on ``johnson``)."""

    def __init__(self, arrays, bar):
        self._arrays = list(arrays)
        self._it = iter(self._arrays)
        self._bar = bar

    def __len__(self):
        return len(self._arrays)

    def set_range(self, start_index, end_index):
        self._it = iter(self._arrays[start_index:end_index])

    def get_next(self):
        x = next(self._it, None)
        if x is None:
            return None
        self._bar.update(1)
        return {INPUT_NAME: x}

    def __iter__(self):  # newer onnxruntime versions iterate the reader
        return self

    def __next__(self):
        item = self.get_next()
        if item is None:
            raise StopIteration
        return item


# --------------------------------------------------------------------------- MXNet (oneDNN)

def quantize_mxnet(prefix, out_prefix, calib, held, *, min_psnr=35.0, min_speedup=1.1, calib_mode="naive",
                   bench_size=512, bench_runs=5, progress=True, log=print):
    """Quantize the symbol/params pair ``prefix`` into ``out_prefix-symbol.json`` / ``-0000.params``.

    Calibration runs ``calib_mode`` ('naive': min/max, or 'entropy': KL thresholds, several
    times slower). Returns a report dict like :func:`quantize_onnx`; files exist only when kept.
    """
    if calib_mode not in MXNET_CALIB_MODES:
        raise ConfigError(f"MXNet calibration mode must be 'naive' or 'entropy', not {calib_mode!r}")
    os.environ.setdefault("MXNET_SUBGRAPH_VERBOSE", "0")  # "Subgraph backend MKLDNN is activated" per bind
    import mxnet as mx
    from mxnet.contrib.quantization import quantize_net_v2

    fp32 = import_block(prefix)
    references = [fp32(mx.nd.array(x)).asnumpy() for x in held]
    nodes = [(n["name"], n["op"]) for n in _symbol_nodes(prefix) if n["op"] != "null"]
    settings, fidelities = {}, {}
    trials = {p["name"]: f"{out_prefix}.trial-{p['name']}" for p in PLANS}

    def attempt(plan):
        exclude = _plan_excludes(plan, nodes, "Convolution")
        # convs only: the residual additions stay fp32 too (MXNet's other quantizable ops here)
        exclude_ops = ["elemwise_add", "_Plus", "broadcast_add"] if plan["convs_only"] else None
        settings[plan["name"]] = dict(api="quantize_net_v2", calib_mode=calib_mode, quantized_dtype="auto",
                                      quantize_mode="full", exclude_layers=exclude, exclude_operators=exclude_ops)
        net = import_block(prefix, hybridize=False)
        bar = _bar(len(calib), f"calibrate MXNet int8 ({plan['name']})", progress)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                qnet = quantize_net_v2(net, quantized_dtype="auto", quantize_mode="full",
                                       exclude_layers=list(exclude), exclude_operators=exclude_ops,
                                       calib_data=_MxCalibIter(calib, bar),
                                       calib_mode=calib_mode, num_calib_examples=len(calib), ctx=mx.cpu())
        finally:
            bar.close()
        qnet.hybridize(static_alloc=True)
        qnet(mx.nd.array(held[0]))
        qnet.export(trials[plan["name"]], 0)
        int8 = import_block(trials[plan["name"]])  # judge the files that ship, not the object in memory
        fidelities[plan["name"]] = _fidelity([int8(mx.nd.array(x)).asnumpy() for x in held], references,
                                             held[0].shape[-1], min_psnr)
        return fidelities[plan["name"]]

    try:
        plan, attempts, skipped = search_plans(attempt, min_psnr)
        report = dict(kept=False, backend="mxnet", fidelity=None, attempts=attempts, skipped=skipped,
                      min_psnr_db=float(min_psnr))
        if plan is None:
            return report
        trial = trials[plan["name"]]
        int8 = import_block(trial)
        x = mx.nd.array(_bench_input(bench_size))
        t_fp32, t_int8 = median_seconds([lambda a: fp32(a).wait_to_read(), lambda a: int8(a).wait_to_read()],
                                        x, bench_runs)
        report.update(plan=plan["name"], settings=settings[plan["name"]],
                      fidelity=fidelities[plan["name"]],
                      speedup_vs_fp32=_speed("mxnet", bench_size, bench_runs, t_fp32, t_int8))
        if report["speedup_vs_fp32"]["speedup"] >= min_speedup:
            for suffix in ("-symbol.json", "-0000.params"):
                os.replace(trial + suffix, out_prefix + suffix)
            report["kept"] = True
        return report
    finally:
        for trial in trials.values():
            for suffix in ("-symbol.json", "-0000.params"):
                if os.path.exists(trial + suffix):
                    os.remove(trial + suffix)


def _symbol_nodes(prefix):
    import json

    with open(f"{prefix}-symbol.json") as f:
        return json.load(f)["nodes"]


def import_block(prefix, hybridize=True):
    """``prefix-symbol.json`` + ``prefix-0000.params`` as a Gluon SymbolBlock on the CPU (input
    :data:`~.onnx_export.INPUT_NAME`), hybridized with ``static_alloc`` unless ``hybridize=False``."""
    import mxnet as mx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Cannot decide type for the following arguments"
        block = mx.gluon.SymbolBlock.imports(f"{prefix}-symbol.json", [INPUT_NAME], f"{prefix}-0000.params",
                                             ctx=mx.cpu())
    if hybridize:
        block.hybridize(static_alloc=True)
    return block


def _mx_data_iter_class():
    import mxnet as mx

    class MxCalibIter(mx.io.DataIter):
        """Batches of one calibration photo, advancing a progress bar."""

        def __init__(self, arrays, bar):
            super().__init__(batch_size=1)
            self._arrays, self._bar, self._i = arrays, bar, 0
            self.provide_data = [mx.io.DataDesc(INPUT_NAME, arrays[0].shape, np.float32)]
            self.provide_label = []

        def reset(self):
            self._i = 0

        def next(self):
            if self._i >= len(self._arrays):
                raise StopIteration
            x = self._arrays[self._i]
            self._i += 1
            self._bar.update(1)
            return mx.io.DataBatch(data=[mx.nd.array(x)], label=None, pad=0)

    return MxCalibIter


def _MxCalibIter(arrays, bar):
    return _mx_data_iter_class()(arrays, bar)
