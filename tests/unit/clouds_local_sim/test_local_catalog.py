from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from skyplan.clouds.local import catalog


@pytest.mark.parametrize(
    "raw, name",
    [
        ("Tesla V100-SXM2-16GB", "V100"),
        ("Tesla V100-SXM2-32GB", "V100-32GB"),
        ("NVIDIA A100-SXM4-40GB", "A100"),
        ("NVIDIA A100-SXM4-80GB", "A100-80GB"),
        ("NVIDIA A100 80GB PCIe", "A100-80GB"),
        ("NVIDIA H100 80GB HBM3", "H100"),
        ("NVIDIA L4", "L4"),
        ("NVIDIA L40S", "L40S"),
        ("NVIDIA A10G", "A10G"),
        ("NVIDIA A10", "A10"),
        ("Tesla T4", "T4"),
        ("NVIDIA GeForce RTX 4090", "RTX4090"),
        ("NVIDIA RTX A6000", "A6000"),
        ("NVIDIA Quadro Foo", "Quadro-Foo"),
    ],
)
def test_canonical_gpu_names(raw: str, name: str) -> None:
    assert catalog.canonical_gpu_name(raw) == name


def test_parse_nvidia_smi_lines() -> None:
    text = "Tesla V100-SXM2-16GB, 16160 MiB\nTesla V100-SXM2-16GB, 16160 MiB\n\n"
    assert catalog.parse_nvidia_smi(text) == [("V100", 15.8), ("V100", 15.8)]


def test_offer_from_machine_facts() -> None:
    gpus = [("T4", 15.0), ("A100", 40.0), ("A100", 39.5)]
    o = catalog.offer_from(8, 31.2, gpus)
    assert (o.cloud, o.instance_type, o.region, o.zone) == ("local", "local", "local", None)
    assert (o.vcpus, o.memory_gib) == (8.0, 31.2)
    assert (o.accelerator, o.accelerator_count, o.device_memory_gib) == ("A100", 2.0, 39.5)
    assert o.price == 0.0 and o.spot_price is None
    assert o.hourly(False) == 0.0 and o.hourly(True) is None


def test_offer_without_gpus() -> None:
    o = catalog.offer_from(2, 4.0, [])
    assert o.accelerator is None and o.accelerator_count == 0.0 and o.device_memory_gib is None


def test_memory_from_meminfo() -> None:
    meminfo = "MemTotal:       24576000 kB\nMemFree:        1000 kB\n"
    assert catalog.memory_gib(meminfo) == 23.4


def _fake_smi(bin_dir: Path, output: str, rc: int = 0) -> None:
    exe = bin_dir / "nvidia-smi"
    # PATH holds only this directory in the tests: use shell builtins only.
    exe.write_text(f"#!/bin/sh\nprintf '%s\\n' '{output}'\nexit {rc}\n")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)


def test_detect_gpus_runs_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_smi(tmp_path, "NVIDIA L4, 23034 MiB")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert catalog.detect_gpus() == [("L4", 22.5)]


def test_detect_gpus_failing_smi_means_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_smi(tmp_path, "NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver", rc=9)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert catalog.detect_gpus() == []


def test_local_offer_is_this_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_smi(tmp_path, "Tesla T4, 15360 MiB")
    monkeypatch.setenv("PATH", str(tmp_path))
    catalog.local_offer.cache_clear()
    try:
        o = catalog.local_offer()
        assert o.vcpus == float(os.cpu_count() or 1)
        assert o.memory_gib == catalog.memory_gib()
        assert (o.accelerator, o.accelerator_count) == ("T4", 1.0)
    finally:
        catalog.local_offer.cache_clear()
