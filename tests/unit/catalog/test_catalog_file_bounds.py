"""A catalog file is read like every other input: a regular file of bounded size."""

from __future__ import annotations

import os

import pytest

from skyplan.catalog import loader
from skyplan.errors import InputError
from skyplan.spec import bounded


def test_a_fifo_as_the_catalog_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "offers.json"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="FIFO"):
        loader._read(fifo, embedded=False)


def test_a_device_as_the_catalog_is_refused():
    with pytest.raises(InputError, match="not a catalog file"):
        loader._read(loader.Path("/dev/zero"), embedded=False)


def test_a_catalog_past_the_size_limit_is_refused_before_it_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(bounded, "CATALOG", bounded.Limits("catalog", 1000, 16, 0))
    big = tmp_path / "offers.json"
    big.write_bytes(b" " * 1001)
    with pytest.raises(InputError, match="too large"):
        loader._read(big, embedded=False)
