"""The bf16 fidelity gate: may OpenVINO run this model in bfloat16?

bf16 is not a file: OpenVINO reads the fp32 ONNX file and, asked to (``INFERENCE_PRECISION_HINT``),
computes in bfloat16 on CPUs that do so natively (AVX512_BF16, AMX). bf16 keeps 8 bits of
mantissa, so the output moves by up to a few units on the 0-255 scale. As with int8, the exporter
measures it against fp32 on held-out photos, and the card records the result
(``card["bf16"]["openvino"]``); the runtime uses bf16 only when it says ``kept``.
"""
import numpy as np

from ..quality import psnr
from ..system import usable_cpus

__all__ = ["check_openvino_bf16"]


def check_openvino_bf16(onnx_path, held, *, min_psnr=35.0, bench_size=512, bench_runs=5, log=print):
    """OpenVINO bf16 against onnxruntime fp32 on the held-out photos ``held`` (1x3xSxS arrays).

    Returns the card's record: ``kept`` (the PSNR of every photo >= ``min_psnr``), ``fidelity`` and the speed
    of OpenVINO bf16 and fp32 against onnxruntime fp32 at ``bench_size``; or ``kept: False`` with a
    ``reason`` when OpenVINO or native bf16 is missing here.
    """
    from ..runtime.backends import OpenVINOBackend, backend_available, openvino_has_bf16
    from .onnx_export import ort_session, run_onnx
    from .quantize import PSNR_CAP_DB, _bench_input, median_seconds

    if not backend_available("openvino"):
        return dict(kept=False, reason="OpenVINO is not installed (pip install openvino)")
    if not openvino_has_bf16():
        return dict(kept=False, reason="this CPU does not compute bf16 natively (no AVX512_BF16 or AMX)")
    with open(onnx_path, "rb") as f:
        model = f.read()
    fp32 = ort_session(onnx_path)
    bf16 = OpenVINOBackend(model, stride=1, precision="bf16")
    references = [run_onnx(fp32, x) for x in held]
    values = [psnr(bf16.run(x), r, cap=PSNR_CAP_DB) for x, r in zip(held, references)]
    fidelity = dict(psnr_db_mean=round(float(np.mean(values)), 3), psnr_db_min=round(float(np.min(values)), 3),
                    photos=len(values), size=int(held[0].shape[-1]), min_psnr_db=float(min_psnr))
    kept = fidelity["psnr_db_min"] >= min_psnr  # every held-out photo, as int8
    record = dict(kept=bool(kept), fidelity=fidelity)
    if kept:
        ov_fp32 = OpenVINOBackend(model, stride=1, precision="fp32")
        t_ort, t_f32, t_bf16 = median_seconds([lambda a: run_onnx(fp32, a), ov_fp32.run, bf16.run],
                                              _bench_input(bench_size), bench_runs)
        record["speed"] = dict(size=int(bench_size), runs=int(bench_runs), threads=usable_cpus(),
                               onnxruntime_fp32_seconds=round(t_ort, 4), openvino_fp32_seconds=round(t_f32, 4),
                               openvino_bf16_seconds=round(t_bf16, 4),
                               bf16_speedup_vs_onnxruntime_fp32=round(t_ort / t_bf16, 3))
    log(f"OpenVINO bf16 {'kept' if kept else 'NOT kept'}: PSNR {fidelity['psnr_db_mean']:.1f} dB mean, "
        f"{fidelity['psnr_db_min']:.1f} min vs fp32 (bound {min_psnr:g} dB)"
        + (f"; {record['speed']['bf16_speedup_vs_onnxruntime_fp32']:.2f}x onnxruntime fp32 at "
           f"{bench_size}x{bench_size}" if kept else ""))
    return record
