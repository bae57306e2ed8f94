"""What this machine gives the process (no heavy imports)."""
import os

__all__ = ["usable_cpus", "cpu_flags", "has_native_bf16"]


def usable_cpus():
    """The number of CPUs this process may run on (its affinity mask, e.g. a container's share),
    at least 1."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def cpu_flags():
    """The CPU's feature flags as /proc/cpuinfo lists them (``avx2``, ``avx512_bf16``...); empty
    where there is no /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def has_native_bf16():
    """True where the CPU computes bfloat16 dot products natively (AVX512_BF16 or AMX); elsewhere
    oneDNN's bfloat16 kernels are emulated and slower than float32."""
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())
