"""What the benchmarks that drive a real gateway say about the machine and software they ran on."""

import contextlib
import os
import platform
import sys
from importlib.metadata import version
from pathlib import Path


def load_average() -> str:
    """The one-minute load average, where the system has one."""
    with contextlib.suppress(OSError, AttributeError):
        return f"{os.getloadavg()[0]:.1f}"
    return "unknown"


def cpu_model() -> str:
    """The processor's name where the system tells it, else its architecture."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine() -> str:
    """The platform, the processor and the number of CPUs."""
    return f"{platform.platform()} ({cpu_model()}), {os.cpu_count()} CPUs"


def gateway_versions() -> str:
    """Python and the versions of the packages a gateway's speed depends on."""
    return (
        f"Python {platform.python_version()}, mongoeco {version('mongoeco')}, pymongo {version('pymongo')}, "
        f"uvicorn {version('uvicorn')}, strawberry-graphql {version('strawberry-graphql')}"
    )


def publish(section: str, write: Path | None) -> None:
    """A benchmark's Markdown section to standard output and, with ``--write``, appended to that file."""
    sys.stdout.write(section)
    if write is not None:
        with write.open("a", encoding="utf-8") as target:
            target.write("\n" + section)
