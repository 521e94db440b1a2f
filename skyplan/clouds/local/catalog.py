"""The local cloud's catalog: one offer, this machine, at $0.

Choices, documented once here:
  * ``instance_type`` and ``region`` are both ``"local"``; ``zone`` is None,
    as for any cloud without zones (``Local.has_zones`` is False), so a task
    pinning ``zone:`` never matches this machine by accident.
  * ``spot_price`` is None: there is no spot market on this machine.
  * GPUs come from ``nvidia-smi``. When the machine mixes models, the offer
    carries the most numerous one (an Offer holds a single accelerator kind).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections import Counter
from functools import lru_cache

from skyplan.catalog.model import Offer

LOCAL = "local"

# Most specific first: "A100 80GB" must not fall through to "A100", nor "L40S" to "L4".
_CANONICAL: tuple[tuple[str, str], ...] = (
    (r"A100.*80\s*GB", "A100-80GB"),
    (r"V100.*32\s*GB", "V100-32GB"),
    (r"\bGH200\b", "GH200"),
    (r"\bH200\b", "H200"),
    (r"\bH100\b", "H100"),
    (r"\bB200\b", "B200"),
    (r"\bA100\b", "A100"),
    (r"\bV100\b", "V100"),
    (r"\bL40S\b", "L40S"),
    (r"\bL40\b", "L40"),
    (r"\bL4\b", "L4"),
    (r"\bA10G\b", "A10G"),
    (r"\bA10\b", "A10"),
    (r"\bT4\b", "T4"),
    (r"\bP100\b", "P100"),
    (r"\bP4\b", "P4"),
    (r"\bK80\b", "K80"),
    (r"\bM60\b", "M60"),
    (r"\bA6000\b", "A6000"),
    (r"RTX\s*(\d{4})", r"RTX\1"),
)


def canonical_gpu_name(raw: str) -> str:
    """Map an ``nvidia-smi`` product name to the catalog's accelerator name.

    ``"Tesla V100-SXM2-16GB"`` -> ``"V100"``; ``"NVIDIA A100-SXM4-80GB"`` ->
    ``"A100-80GB"``. An unknown product keeps its own name without the vendor
    words, so it still plans under the name the user sees.
    """
    for pattern, name in _CANONICAL:
        m = re.search(pattern, raw, flags=re.IGNORECASE)
        if m:
            return m.expand(name)
    words = [w for w in raw.split() if w.lower() not in {"nvidia", "tesla", "geforce"}]
    return "-".join(words) or raw.strip()


def parse_nvidia_smi(text: str) -> list[tuple[str, float | None]]:
    """Parse ``nvidia-smi --query-gpu=name,memory.total --format=csv,noheader``.

    Returns one ``(canonical name, memory GiB or None)`` per GPU line.
    """
    out: list[tuple[str, float | None]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        name, _, mem = line.rpartition(",")
        if not name:  # no comma: a bare name
            name, mem = line, ""
        gib: float | None = None
        m = re.search(r"([\d.]+)\s*MiB", mem)
        if m:
            gib = round(float(m.group(1)) / 1024.0, 1)
        out.append((canonical_gpu_name(name.strip()), gib))
    return out


def detect_gpus() -> list[tuple[str, float | None]]:
    """GPUs on this machine, or [] when there is no ``nvidia-smi`` or it fails."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        proc = subprocess.run(
            [exe, "--query-gpu=name,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    if proc.returncode != 0:
        return []
    return parse_nvidia_smi(proc.stdout)


def memory_gib(meminfo: str | None = None) -> float:
    """Total memory in GiB from /proc/meminfo (``MemTotal``), else from sysconf."""
    if meminfo is None:
        try:
            with open("/proc/meminfo", encoding="ascii") as f:
                meminfo = f.read()
        except OSError:
            meminfo = ""
    m = re.search(r"^MemTotal:\s+(\d+)\s*kB", meminfo, flags=re.MULTILINE)
    if m:
        return round(int(m.group(1)) / (1024 * 1024), 1)
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return 0.0


def offer_from(vcpus: float, mem_gib: float, gpus: list[tuple[str, float | None]]) -> Offer:
    """Build the local offer from measured facts (pure; tests use this)."""
    accelerator: str | None = None
    count = 0.0
    device_mem: float | None = None
    if gpus:
        accelerator, n = Counter(name for name, _ in gpus).most_common(1)[0]
        count = float(n)
        mems = [m for name, m in gpus if name == accelerator and m is not None]
        device_mem = min(mems) if mems else None
    return Offer(
        cloud=LOCAL,
        instance_type=LOCAL,
        region=LOCAL,
        zone=None,
        vcpus=float(vcpus),
        memory_gib=mem_gib,
        accelerator=accelerator,
        accelerator_count=count,
        price=0.0,
        spot_price=None,
        device_memory_gib=device_mem,
    )


@lru_cache(maxsize=1)
def local_offer() -> Offer:
    """This machine as an offer. Cached: the hardware does not change within a run."""
    return offer_from(os.cpu_count() or 1, memory_gib(), detect_gpus())
