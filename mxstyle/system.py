"""What this machine gives the process (no heavy imports)."""
import os

__all__ = ["usable_cpus"]


def usable_cpus():
    """The number of CPUs this process may run on (its affinity mask, e.g. a container's share),
    at least 1."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1
