"""The machine line every benchmark page starts with (imported by the scripts beside it)."""

import os
import platform
from pathlib import Path


def cpu_model():
    """The CPU's model name (from /proc/cpuinfo on Linux), e.g. "AMD EPYC 7B13"."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def machine_line():
    """`2 cores, AMD EPYC 7B13, Python 3.11.7`."""
    return f"{os.cpu_count()} cores, {cpu_model()}, Python {platform.python_version()}"
