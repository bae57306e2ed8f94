"""What machine a benchmark ran on: CPU model, cores, vector ISA, threads, versions (no heavy imports)."""

import os
import platform
from importlib import metadata

from mxstyle.system import cpu_flags, usable_cpus

ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16")


def cpuinfo():
    """(CPU model name, set of /proc/cpuinfo flags)."""
    model = platform.processor() or "unknown"
    try:
        lines = open("/proc/cpuinfo").read().splitlines()
    except OSError:
        lines = []
    model = next((l.split(":", 1)[1].strip() for l in lines if l.startswith("model name")), model)
    return model, set(cpu_flags())


def _version(dist):
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def machine_info():
    model, flags = cpuinfo()
    cores = usable_cpus()
    versions = {name: _version(dist) for name, dist in (
        ("mxnet", "mxnet"), ("onnxruntime", "onnxruntime"), ("opencv", "opencv-python-headless"),
        ("torch", "torch"), ("numpy", "numpy"))}
    return dict(cpu=model, cores=cores, isa=[f for f in ISA_FLAGS if f in flags],
                omp_threads=os.environ.get("OMP_NUM_THREADS", "unset"), python=platform.python_version(),
                kernel=platform.release(), versions=versions, loadavg_start=os.getloadavg()[0])


def describe(info):
    """One line for a report header."""
    v = ", ".join(f"{k} {val}" for k, val in info["versions"].items() if val)
    return (f"{info['cpu']}, {info['cores']} cores ({'/'.join(info['isa']) or 'no AVX2'}), "
            f"OMP_NUM_THREADS={info['omp_threads']}; python {info['python']}, {v}")
