"""The real stack driver and the test fake implement one Protocol, with the same signatures."""

from __future__ import annotations

import inspect
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from skyplan.provision import driver as real
from skyplan.provision import protocol
from skyplan.provision.protocol import Driver, UpResult
from skyplan.testing.fakes import FakeDriver

REPO = Path(__file__).resolve().parents[3]
METHODS = [n for n, v in vars(Driver).items() if inspect.isfunction(v) and not n.startswith("_")]


def test_the_protocol_names_what_launch_uses() -> None:
    # outputs: a converging apply reads the record a cluster's stack exports.
    assert sorted(METHODS) == ["destroy_and_remove", "list_stacks", "outputs", "up"]
    assert "backend_url" in typing.get_type_hints(Driver)


@pytest.mark.parametrize("impl", [real.StackDriver, FakeDriver], ids=["StackDriver", "FakeDriver"])
def test_both_drivers_have_the_protocols_signatures(impl: type) -> None:
    assert "backend_url" in typing.get_type_hints(impl)
    for name in METHODS:
        want = inspect.signature(getattr(Driver, name))
        got = inspect.signature(getattr(impl, name))
        assert [(p.name, p.kind, p.default) for p in got.parameters.values()] == \
               [(p.name, p.kind, p.default) for p in want.parameters.values()], name
        assert got.return_annotation == want.return_annotation, name


def test_the_fake_is_a_driver_and_returns_the_real_result_type() -> None:
    fake = FakeDriver(lambda stack: UpResult(False, error="boom"))
    assert isinstance(fake, Driver)
    res = fake.up("s1", lambda: None, timeout_s=1)
    assert type(res) is UpResult and res.stack == "s1" and not res.program_error and not res.timed_out
    # The driver module hands out the protocol's types, not look-alikes.
    assert real.UpResult is protocol.UpResult and real.InterruptedOp is protocol.InterruptedOp


def test_engine_events_are_typed_at_the_pipe() -> None:
    e = protocol.engine_event({"type": "res_outputs", "op": "create", "urn": "u", "resource_type": "t",
                               "id": "i1", "outputs": {"a": 1}}, "stk")
    assert e == protocol.ResourceStep("stk", "outputs", "create", "u", "t", "i1", {"a": 1})
    d = protocol.engine_event({"type": "diagnostic", "severity": "error", "message": "m", "urn": None}, "stk")
    assert d == protocol.Diagnostic("stk", "error", "m", None)
    assert protocol.engine_event({"type": "driver", "message": "cleared"}, "s") == protocol.DriverNote("s", "cleared")
    assert protocol.engine_event({"type": "something-new"}, "s") is None


def test_engine_and_settings_do_not_import_the_driver() -> None:
    """driver.py imports engine.py; engine.py (doctor) reads the settings without the driver."""
    code = (
        "import sys\n"
        "from skyplan.provision import engine\n"
        "engine.doctor_info()\n"
        "print('skyplan.provision.driver' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
