"""The F9T settings rules shared by InitF9t and the configuration (docs/ublox.md, "One set of rules").

The rules themselves, then the promise they exist for: for the same settings, the configuration
refuses exactly what InitF9t's plan refuses, with the same message after the field's path.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from panoseti_appliance.config import ConfigError, load_config
from panoseti_appliance.ublox import rules
from panoseti_appliance.ublox.server.plan import InvalidConfig, tmode_settings, validate_config
from panoseti_appliance.ublox.values import coerce_value, key_by_name, normalise_key

UID = "DF03A241BC"


def test_known_keys_by_name_or_id() -> None:
    key = normalise_key(" cfg-tp-pulse_def ")
    assert (key.name, key.key_id, key.type_name) == ("CFG_TP_PULSE_DEF", 0x20050023, "E1")
    assert normalise_key("0x20050023") == key


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("CFG_TP_PULSEDEF", "CFG_TP_PULSEDEF; did you mean CFG_TP_PULSE_DEF?"),
        ("cfg-tmode-lathp", "CFG_TMODE_LATHP; did you mean CFG_TMODE_LAT_HP or CFG_TMODE_LAT"),
        ("CFG_NOT_A_KEY", "CFG_NOT_A_KEY; use a name of the u-blox interface description"),
        ("0x12345678", "0x12345678; no key has that id"),
    ],
)
def test_unknown_keys_say_what_is_close(raw: str, message: str) -> None:
    with pytest.raises(
        ValueError, match=f"^{re.escape(f'Undefined configuration database key {message}')}"
    ):
        normalise_key(raw)


@pytest.mark.parametrize(
    ("name", "good", "bad", "message"),
    [
        ("CFG_TP_PULSE_DEF", 1, 99, "99 is not one of 0 (PERIOD), 1 (FREQ) (type E1)"),
        ("CFG_TP_PULSE_DEF", 0, 2, "2 is not one of 0 (PERIOD), 1 (FREQ) (type E1)"),
        ("CFG_TMODE_MODE", 2, 3, "3 is not one of 0 (DISABLED), 1 (SURVEY_IN), 2 (FIXED)"),
        ("CFG_NAVSPG_DYNMODEL", 2, 1, "1 is not one of 0 (PORT), 2 (STAT)"),
        ("CFG_NMEA_PROTVER", 255, 256, "256 is out of range 0..255 (type E1)"),  # no constants
        ("CFG_TP_TP1_ENA", True, 2, "2 is not a boolean; give true/false or 0/1 (type L)"),
        ("CFG_MSGOUT_UBX_TIM_TP_USB", 255, 256, "256 is out of range 0..255 (type U1)"),
        ("CFG_TP_FREQ_TP1", "0xFFFFFFFF", -1, "-1 is out of range 0..4294967295 (type U4)"),
        ("CFG_TMODE_LAT_HP", -128, 128, "128 is out of range -128..127 (type I1)"),
        ("CFG_TP_ANT_CABLEDELAY", -32768, 32768, "32768 is out of range -32768..32767 (type I2)"),
        (
            "CFG_TP_FREQ_TP1",
            1.0,
            1.5,
            "1.5 is not an integer; give a whole number 0..4294967295 (type U4)",
        ),
        ("CFG_TP_FREQ_TP1", "10", "ten", "'ten' is not an integer; give a whole number 0.."),
        ("CFG_TP_DUTY_TP1", "0.5", [1], "[1] is not a number; give a finite number (type R8)"),
        ("CFG_NAVSPG_USRDAT_DX", 1e38, 1e39, "1e+39 does not fit a float32; give a finite"),
        ("CFG_TP_DUTY_TP1", 1e308, 10**400, "1000000000000"),  # beyond a double
        ("CFG_UART1_PARITY", 2, 3, "3 is not one of 0 (NONE), 1 (ODD), 2 (EVEN) (type E1)"),
    ],
)
def test_values_follow_their_type_and_constants(
    name: str, good: object, bad: object, message: str
) -> None:
    key = key_by_name(name)
    coerce_value(key, good)
    with pytest.raises(ValueError, match=f"^{re.escape(f'{name}: {message}')}"):
        coerce_value(key, bad)


def test_bit_fields_name_their_width() -> None:
    key = key_by_name("CFG_INFMSG_UBX_USB")  # X1
    assert coerce_value(key, "0x1F") == b"\x1f"
    expected = (
        "CFG_INFMSG_UBX_USB: '31' is not a bit field; give an integer or a 0x… string, "
        "0x0..0xFF (type X1)"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        coerce_value(key, "31")
    with pytest.raises(ValueError, match=r"256 is out of range 0\.\.255 \(type X1\)"):
        coerce_value(key, 256)


def test_layers() -> None:
    assert rules.layer(" ram ") == "RAM"
    for bad in ("ROM", ["RAM"], 1):
        with pytest.raises(ValueError, match="is not one of RAM, BBR, FLASH"):
            rules.layer(bad)
    with pytest.raises(ValueError, match=r"\[\] must be a non-empty list of RAM, BBR, FLASH"):
        rules.layer_list([])
    assert rules.repeated(["RAM", "BBR", "RAM"]) == {
        2: "RAM appears more than once; remove the duplicate"
    }
    rules.verify_layer("BBR", ["RAM", "BBR"])
    with pytest.raises(ValueError, match=r"verify_layer FLASH is not one of the layers written"):
        rules.verify_layer("FLASH", ["RAM", "BBR"])


def test_tmode_keys_beside_a_position() -> None:
    names = ["CFG_TP_FREQ_TP1", "CFG_TMODE_MODE"]
    assert list(rules.tmode_conflicts(names)) == [1]
    assert "conflicts with position" in rules.tmode_conflicts(names)[1]


@pytest.mark.parametrize(
    ("name", "bad", "message"),
    [
        ("lat_deg", 90.5, "90.5 is outside [-90, 90]"),
        ("lon_deg", -181, "-181 is outside [-180, 180]"),
        ("height_m", 20_001, "20001 is outside [-1000, 20000]"),
        ("x_m", 7e6 + 1, "7000001 is outside [-7000000, 7000000]"),
        ("y_m", -7e6 - 0.5, "-7000000.5 is outside [-7000000, 7000000]"),
        ("z_m", float("nan"), "nan is not a finite number; give one within [-7000000, 7000000]"),
        ("y_m", "1.0", "'1.0' is not a finite number"),
        ("x_m", 10**400, "1000000000000"),  # beyond a double
    ],
)
def test_coordinates_have_ranges(name: str, bad: object, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
        rules.coordinate(name, bad)


def test_accuracy_is_positive_and_fits_its_key() -> None:
    assert rules.accuracy(rules.MAX_ACC_M) == rules.MAX_ACC_M
    for bad in (0, -1, rules.MAX_ACC_M + 1, True, None):
        with pytest.raises(ValueError, match="must be a number > 0 and at most 429496"):
            rules.accuracy(bad)


@pytest.mark.parametrize("corner", [0, 1])
def test_every_position_within_the_ranges_fits_the_tmode_keys(corner: int) -> None:
    """The ranges are what keeps the TMODE values within their keys' types."""
    ends = {name: bounds[corner] for name, bounds in rules.COORDINATE_RANGES.items()}
    for fmt, fields in rules.POSITION_FIELDS.items():
        position = {"format": fmt, "acc_m": rules.MAX_ACC_M, **{f: ends[f] for f in fields}}
        for name, value in tmode_settings(position):
            coerce_value(key_by_name(name), value)


def test_position_fields_belong_to_their_format() -> None:
    assert rules.position_fields("LLH", {"lat_deg", "height_m", "x_m"}) == {
        "lon_deg": "required for format LLH; add it",
        "x_m": "does not belong to format LLH; remove it or change format",
    }
    assert rules.position_format(" ecef ") == "ECEF"
    for bad, shown in (("XYZ", "'XYZ'"), (["LLH"], r"\['LLH'\]"), (None, "None")):
        with pytest.raises(ValueError, match=f"{shown} is not LLH or ECEF"):
            rules.position_format(bad)


def test_uids_bauds_and_devices() -> None:
    assert rules.receiver_uid(" df03a241bc ") == UID
    with pytest.raises(ValueError, match="'DF03A241' is not a UID; give the receiver's SEC-UNIQID"):
        rules.receiver_uid("DF03A241")
    with pytest.raises(ValueError, match="102030405 was read as a number, not a UID"):
        rules.receiver_uid(102030405)
    assert rules.baud(115200.0) == 115200
    with pytest.raises(ValueError, match="12345 is not a standard baud rate; use one of 4800"):
        rules.baud(12345)
    assert rules.device(" /dev/ttyACM0 ") == "/dev/ttyACM0"
    with pytest.raises(ValueError, match="required; give the receiver's serial device"):
        rules.device(None)


def test_chip_selection_and_merge() -> None:
    assert rules.chip_index(["DF03A241BC", "DF03A241BD"], "df03a241bd") == 1
    with pytest.raises(ValueError, match="no chip has uid AAAAAAAAAA; the chips are: DF03A241BC"):
        rules.chip_index(["DF03A241BC"], "AAAAAAAAAA")
    general = {
        "device": "/dev/a",
        "cfg_key_settings": [{"key": "CFG_TP_FREQ_TP1", "value": 1}],
        "f9t_chips": [{"f9t_uid": UID}],
    }
    merged = rules.merge_chip(general, {"f9t_uid": UID, "cfg_key_settings": []})
    assert merged == {"device": "/dev/a", "cfg_key_settings": [], "f9t_uid": UID}
    merged["device"] = "/dev/b"
    assert general["device"] == "/dev/a"  # the general settings are not changed


# --- one rule: the configuration refuses what InitF9t refuses, in the same words ----------------

GENERAL: dict[str, Any] = {
    "device": "/dev/ttyACM0",
    "apply_to_layers": ["RAM", "BBR"],
    "verify_layer": "RAM",
    "cfg_key_settings": [{"key": "CFG_TP_PULSE_DEF", "value": 1}],
}


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"cfg_key_settings": [{"key": "CFG_NOT_A_KEY", "value": 1}]},
        {
            "cfg_key_settings": [
                {"key": "CFG_NOT_A_KEY", "value": 1},
                {"key": "CFG_TP_PULSE_DEF", "value": 99},
            ]
        },
        {"cfg_key_settings": [{"key": "cfg-tp-pulsedef", "value": 1}]},
        {"cfg_key_settings": [{"key": "CFG_TP_FREQ_TP1", "value": 1.5}]},
        {"cfg_key_settings": [{"key": "CFG_TP_TP1_ENA", "value": 2}]},
        {"cfg_key_settings": [{"key": "CFG_TMODE_LAT_HP", "value": -129}]},
        {"cfg_key_settings": [{"key": "CFG_TP_DUTY_TP1", "value": "half"}]},
        {
            "cfg_key_settings": [
                {"key": "CFG_TP_FREQ_TP1", "value": 1},
                {"key": "0x40050024", "value": 2},
            ]
        },
        {
            "cfg_key_settings": [{"key": "CFG_TMODE_MODE", "value": 2}],
            "position": {"lat_deg": 1, "lon_deg": 2, "height_m": 3},
        },
        {"apply_to_layers": ["RAM", "ROM"]},
        {"apply_to_layers": ["RAM", "ram"]},
        {"apply_to_layers": []},
        {"verify_layer": "FLASH"},
        {"verify_layer": "DISK"},
        {"baud": 1234},
        {"device": " "},
        {"position": {"lat_deg": 91, "lon_deg": 0, "height_m": 0}},
        {"position": {"lat_deg": 0, "lon_deg": 0, "height_m": 1e9, "acc_m": 0}},
        {"position": {"format": "ECEF", "x_m": 1, "y_m": 2, "z_m": 3, "acc_m": 1e6}},
        {"position": {"format": "ECEF", "x_m": 1, "y_m": 2}},
        {"position": {"format": "LLH", "lat_deg": 1, "lon_deg": 2, "height_m": 3, "z_m": 4}},
        {"position": {"format": "UTM", "lat_deg": 1}},
    ],
)
def test_the_configuration_refuses_what_init_f9t_refuses(
    tmp_path: Path, change: dict[str, Any]
) -> None:
    settings = {**GENERAL, **change}
    config = tmp_path / "panoseti.yaml"
    config.write_text(yaml.safe_dump({"ublox": {**settings, "chips": [{"uid": UID}]}}))
    try:
        load_config(config, environ={})
        from_config: list[str] = []
    except ConfigError as exc:
        # FILE:LINE: ublox.PATH: message
        from_config = [p.split(": ", 2)[2] for p in exc.problems]
    try:
        validate_config({"f9t_uid": UID, **settings})
        from_init: list[str] = []
    except InvalidConfig as exc:
        from_init = [p.split(": ", 1)[1] for p in exc.problems]  # PATH: message
    assert sorted(from_config) == sorted(from_init)
    assert bool(from_init) == bool(change)


def test_a_chip_is_judged_merged_with_the_general_settings(tmp_path: Path) -> None:
    chip = {"uid": UID, "verify_layer": "FLASH", "position": {"lat_deg": 1, "lon_deg": 2}}
    ublox = {**GENERAL, "cfg_key_settings": [{"key": "CFG_TMODE_MODE", "value": 2}]}
    config = tmp_path / "panoseti.yaml"
    config.write_text(yaml.safe_dump({"ublox": {**ublox, "chips": [chip]}}))
    with pytest.raises(ConfigError) as info:
        load_config(config, environ={})
    assert [p.split(": ", 2)[1] for p in info.value.problems] == [
        "ublox.chips[0].position.height_m"
    ]
    chip["position"] = {"lat_deg": 1, "lon_deg": 2, "height_m": 3}
    config.write_text(yaml.safe_dump({"ublox": {**ublox, "chips": [chip]}}))
    with pytest.raises(ConfigError) as info:
        load_config(config, environ={})
    found = {p.split(": ", 2)[1]: p.split(": ", 2)[2] for p in info.value.problems}
    merged = {**ublox, "f9t_uid": UID, "verify_layer": "FLASH", "position": chip["position"]}
    with pytest.raises(InvalidConfig) as plan:
        validate_config(merged)
    assert sorted(found.values()) == sorted(p.split(": ", 1)[1] for p in plan.value.problems)
    assert sorted(found) == ["ublox.chips[0].position", "ublox.chips[0].verify_layer"]
