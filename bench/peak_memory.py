"""Peak memory of the running process, for the benchmarks."""


def peak_rss_mb() -> int:
    """This process's peak RSS in MB. ``VmHWM`` starts afresh at exec,
    unlike ``ru_maxrss``, which a child inherits from its parent at fork."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024)
    raise RuntimeError("no VmHWM in /proc/self/status")
