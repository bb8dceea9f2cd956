"""InitF9t's rules against hostile values: each is judged at its field, in a bounded message.

A value of the wrong type or size must come back as a problem naming its field (never another
exception), quoting at most the start of the value, and an INVALID_CONFIG message stays a few KiB
however many problems a request holds (docs/ublox.md, "Limits and hostile input").
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from google.protobuf.struct_pb2 import Struct
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from panoseti_appliance.ublox import rules
from panoseti_appliance.ublox.server.decode import config_from_struct
from panoseti_appliance.ublox.server.plan import InvalidConfig, validate_config
from panoseti_appliance.ublox.values import KEY_COUNT, coerce_value, key_by_name
from tests.f9t_strategies import UID, key_settings, struct_values


def problems(cfg: dict[str, Any]) -> list[str]:
    with pytest.raises(InvalidConfig) as info:
        validate_config({"device": "/dev/ttyACM0", "f9t_uid": UID, **cfg})
    return info.value.problems


def test_non_finite_numbers_survive_the_struct_and_are_named_by_their_field() -> None:
    struct = Struct()
    struct.update({"baud": math.inf, "position": {"lat_deg": math.nan}, "n": 3.0})
    cfg = config_from_struct(struct)
    assert cfg["baud"] == math.inf
    assert math.isnan(cfg["position"]["lat_deg"])
    assert repr(cfg["n"]) == "3.0"  # doubles, as MessageToDict gives them
    found = problems({**cfg, "position": {**cfg["position"], "lon_deg": 0, "height_m": 0}})
    assert "baud: inf is not a standard baud rate; use one of 4800, 9600" in found[0]
    assert found[1].startswith("position.lat_deg: nan is not a finite number")


@pytest.mark.parametrize(
    ("cfg", "problem"),
    [
        ({"device": "/dev/" + "x" * 5000}, "device: '/dev/xxxxxxxx"),
        ({"device": "/dev/tty\0"}, r"device: '/dev/tty\x00' is not a device path"),
        ({"f9t_uid": "A" * 1_000_000}, "f9t_uid: 'AAAAAAAAA"),
        ({"apply_to_layers": "R" * 100_000}, "apply_to_layers: 'RRRRRR"),
        ({"cfg_key_settings": [{"key": "CFG_" * 100_000, "value": 1}]}, "no key name is longer"),
        (
            {"cfg_key_settings": [{"key": "CFG_TP_FREQ_TP1", "value": "0x" + "f" * 100_000}]},
            "cfg_key_settings[0].value: CFG_TP_FREQ_TP1: '0xffffffff",
        ),
        (
            {"cfg_key_settings": [{"key": "CFG_TP_FREQ_TP1", "value": 1.7e308}]},
            "CFG_TP_FREQ_TP1: 1699999999999999",
        ),
        ({"cfg_key_settings": [0] * (KEY_COUNT + 1)}, f"{KEY_COUNT + 1} entries, but there"),
    ],
)
def test_a_huge_value_is_a_short_problem_at_its_field(cfg: dict[str, Any], problem: str) -> None:
    (found,) = problems(cfg)
    assert problem in found
    assert len(found) < 400


def test_an_invalid_config_message_lists_whole_problems_up_to_its_limit() -> None:
    exc = InvalidConfig([f"apply_to_layers[{n}]: RAM appears more than once" for n in range(10**5)])
    summary = exc.summary()
    lines = summary.splitlines()
    assert 3900 < len(summary) <= 4096
    assert lines[0] == "apply_to_layers[0]: RAM appears more than once"
    assert lines[-1] == f"… and {10**5 - len(lines) + 1} more problems"
    short = InvalidConfig(["a: one", "b: two"])
    assert short.summary() == str(short) == "a: one\nb: two"


def test_a_long_integer_string_is_not_an_integer() -> None:
    key = key_by_name("CFG_TP_FREQ_TP1")
    with pytest.raises(ValueError, match="is not an integer"):
        coerce_value(key, "1" * 41)
    assert coerce_value(key, " 0x0000000A ") == 10


def test_a_device_path_must_fit_the_kernel() -> None:
    assert rules.device(" /dev/" + "x" * 4000 + " ") == "/dev/" + "x" * 4000
    with pytest.raises(ValueError, match="is not a device path"):
        rules.device("/" + "x" * 4095)


value = struct_values(longest_text=20_000, max_leaves=12)
config = st.fixed_dictionaries(
    {
        "device": st.one_of(st.just("/dev/ttyACM0"), value),
        "f9t_uid": st.one_of(st.just(UID), value),
    },
    optional={
        "baud": value,
        "apply_to_layers": value,
        "verify_layer": value,
        "position": value,
        "cfg_key_settings": key_settings(value),
    },
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=config)
def test_any_value_is_a_plan_or_problems_naming_fields(cfg: dict[str, Any]) -> None:
    try:
        validate_config(cfg)
        return
    except InvalidConfig as exc:
        found, summary = exc.problems, exc.summary()
    fields = ("device", "f9t_uid", "baud", "apply_to_layers", "verify_layer", "position")
    assert all(p.startswith((*fields, "cfg_key_settings")) for p in found), found
    assert all(len(p) < 600 for p in found), found
    assert len(summary) <= 4096
