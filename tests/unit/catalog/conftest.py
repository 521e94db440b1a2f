from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from skyplan.catalog import Catalog, Offer, clear_cache, load_catalog
from skyplan.catalog.build import SEED_DIR, encode
from skyplan.catalog.rows import read_rows


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("SKYPLAN_CATALOG", raising=False)
    clear_cache()
    yield
    clear_cache()


@pytest.fixture(scope="session")
def embedded() -> Catalog:
    clear_cache()
    return load_catalog()


@pytest.fixture(scope="session")
def seed_rows():
    def rows(filename: str) -> list[dict[str, str]]:
        return list(read_rows(SEED_DIR / filename))

    return rows


def _offer(**kw) -> Offer:
    """An Offer with defaults for the fields a test does not care about."""
    base = dict(
        cloud="aws",
        instance_type="m6i.large",
        region="us-east-1",
        zone="use1-az1",
        vcpus=2.0,
        memory_gib=8.0,
        accelerator=None,
        accelerator_count=0.0,
        price=1.0,
        spot_price=0.5,
        device_memory_gib=None,
    )
    base.update(kw)
    return Offer(**base)


@pytest.fixture
def make_catalog(tmp_path: Path):
    """Write offers in the embedded format and load them like any catalog file.

    Each item is a dict of Offer fields; unspecified fields get defaults.
    """
    counter = iter(range(1_000_000))

    def make(items: Iterable[dict]) -> Catalog:
        path = tmp_path / f"cat{next(counter)}.json"
        path.write_bytes(encode([_offer(**kw) for kw in items]))
        return load_catalog(path)

    return make
