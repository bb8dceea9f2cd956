"""Key normalisation and typed value coercion for InitF9t (docs/ublox.md, "Values")."""

from __future__ import annotations

import math

import pytest
from pyubx2 import UBX_CONFIG_DATABASE

from panoseti_appliance.ublox.values import (
    UnknownKeyError,
    coerce_value,
    display_value,
    normalise_key,
    values_equal,
)


@pytest.mark.parametrize(
    "raw",
    ["CFG-TP-ANT_CABLEDELAY", " cfg_tp_ant_cabledelay ", "CFG_TP_ANT_CABLEDELAY", "0x30050001"],
)
def test_normalise_key_accepts_names_and_ids(raw: str) -> None:
    key = normalise_key(raw)
    assert key.name == "CFG_TP_ANT_CABLEDELAY"
    assert key.key_id == 0x30050001
    assert key.type == "I002"


def test_unknown_key_is_named() -> None:
    with pytest.raises(UnknownKeyError, match="Undefined configuration database key CFG_NOT_A_KEY"):
        normalise_key("cfg-not-a-key")
    with pytest.raises(UnknownKeyError, match="0x12345678"):
        normalise_key("0x12345678")


def test_integer_keys_accept_integral_doubles_and_strings() -> None:
    freq = normalise_key("CFG_TP_FREQ_TP1")  # U4
    assert coerce_value(freq, 1.0) == 1
    assert type(coerce_value(freq, 1.0)) is int
    assert coerce_value(freq, "10000000") == 10_000_000
    assert coerce_value(freq, "0x10") == 16


def test_non_integral_float_is_rejected_not_truncated() -> None:
    with pytest.raises(ValueError, match=r"CFG_TP_FREQ_TP1: 1\.9 is not an integer"):
        coerce_value(normalise_key("CFG_TP_FREQ_TP1"), 1.9)


def test_integer_range_by_width_and_sign() -> None:
    lat_hp = normalise_key("CFG_TMODE_LAT_HP")  # I1
    assert coerce_value(lat_hp, -99) == -99
    with pytest.raises(ValueError, match=r"out of range -128\.\.127"):
        coerce_value(lat_hp, 128)
    with pytest.raises(ValueError, match=r"out of range 0\.\.4294967295"):
        coerce_value(normalise_key("CFG_TP_FREQ_TP1"), -1)


def test_boolean_keys() -> None:
    ena = normalise_key("CFG_TP_TP1_ENA")
    assert coerce_value(ena, True) == 1
    assert coerce_value(ena, 0.0) == 0
    with pytest.raises(ValueError, match="true/false or 0/1"):
        coerce_value(ena, 2)


def test_real_keys_reject_nan_and_overflow() -> None:
    duty = normalise_key("CFG_TP_DUTY_TP1")  # R8
    assert coerce_value(duty, "0.01") == 0.01
    with pytest.raises(ValueError, match="not finite"):
        coerce_value(duty, math.nan)
    with pytest.raises(ValueError, match="not finite"):
        coerce_value(duty, math.inf)
    r4 = normalise_key("CFG_NAVSPG_USRDAT_DX")  # R4
    assert r4.type == "R004"
    with pytest.raises(ValueError, match="float32"):
        coerce_value(r4, 1e300)


def test_x_keys_become_little_endian_bytes() -> None:
    key = normalise_key(next(n for n, (_, t) in UBX_CONFIG_DATABASE.items() if t == "X002"))
    assert coerce_value(key, "0x0102") == b"\x02\x01"
    assert coerce_value(key, 3.0) == b"\x03\x00"
    with pytest.raises(ValueError, match=r"out of range 0\.\.65535"):
        coerce_value(key, 0x10000)
    with pytest.raises(ValueError, match="0x"):
        coerce_value(key, "12")
    assert display_value(b"\x02\x01") == "0x0102"


def test_verify_compare_r4_tolerance_and_exact_others() -> None:
    r4 = normalise_key("CFG_NAVSPG_USRDAT_DX")
    wanted = 0.1
    as_float32 = 0.10000000149011612
    assert values_equal(r4, wanted, as_float32)
    assert not values_equal(r4, wanted, 0.1001)
    duty = normalise_key("CFG_TP_DUTY_TP1")  # R8: exact
    assert not values_equal(duty, 0.01, 0.010000001)
    freq = normalise_key("CFG_TP_FREQ_TP1")
    assert values_equal(freq, 1, 1)
    assert not values_equal(freq, 1, 0)
    assert not values_equal(freq, 1, None)
