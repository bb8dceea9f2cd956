"""InitF9t config validation and planning: TMODE maths, layers, grouping, chunks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from panoseti_appliance.ublox.client import chip_config, load_f9t_config
from panoseti_appliance.ublox.server.plan import (
    TXN_COMMIT,
    TXN_NONE,
    TXN_ONGOING,
    TXN_START,
    InvalidConfig,
    tmode_settings,
    validate_config,
)

SHIPPED = Path(__file__).resolve().parents[1] / "data" / "f9t_config.json5"
UID = "DF03A241BC"


def shipped() -> dict[str, Any]:
    return chip_config(load_f9t_config(SHIPPED), UID)


def minimal(**extra: Any) -> dict[str, Any]:
    return {"device": "/dev/ttyACM0", "f9t_uid": UID, **extra}


def test_shipped_config_has_49_items_in_plan_order() -> None:
    plan = validate_config(shipped())
    assert len(plan.items) == 49
    assert plan.set_mask == 3  # RAM | BBR
    assert plan.poll_layer == 0
    groups = plan.groups()
    assert [len(g) for g in groups] == [19, 30]
    assert all(i.key.name.startswith("CFG_SIGNAL_") for i in groups[0])
    names = [i.key.name for i in groups[1]]
    assert names[:9] == [
        "CFG_TMODE_MODE",
        "CFG_TMODE_POS_TYPE",
        "CFG_TMODE_FIXED_POS_ACC",
        "CFG_TMODE_LAT",
        "CFG_TMODE_LON",
        "CFG_TMODE_HEIGHT",
        "CFG_TMODE_LAT_HP",
        "CFG_TMODE_LON_HP",
        "CFG_TMODE_HEIGHT_HP",
    ]
    assert all(n.startswith("CFG_TP_") for n in names[9:26])
    assert all(n.startswith("CFG_MSGOUT_") for n in names[26:])
    messages = plan.messages()
    assert [(m.index, m.group, m.transaction, len(m.items)) for m in messages] == [
        (1, 1, TXN_NONE, 19),
        (2, 2, TXN_NONE, 30),
    ]
    echo = plan.effective_config
    assert echo["apply_to_layers"] == ["RAM", "BBR"]
    assert {"key": "CFG_TP_ANT_CABLEDELAY", "value": 10} in echo["cfg_key_settings"]
    assert echo["position"]["acc_m"] == 0.02


def test_llh_worked_example() -> None:
    pos = {
        "format": "LLH",
        "lat_deg": 37.4219999,
        "lon_deg": -122.0840575,
        "height_m": 12.345,
        "acc_m": 0.02,
    }
    assert dict(tmode_settings(pos)) == {
        "CFG_TMODE_MODE": 2,
        "CFG_TMODE_POS_TYPE": 1,
        "CFG_TMODE_FIXED_POS_ACC": 200,
        "CFG_TMODE_LAT": 374219999,
        "CFG_TMODE_LON": -1220840575,
        "CFG_TMODE_HEIGHT": 1234,
        "CFG_TMODE_LAT_HP": 0,
        "CFG_TMODE_LON_HP": 0,
        "CFG_TMODE_HEIGHT_HP": 50,
    }


def test_ecef_worked_example_and_key_ids() -> None:
    plan = validate_config(
        minimal(position={"format": "ecef", "x_m": -2694044.4111, "y_m": 1.0, "z_m": -0.0001})
    )
    values = {i.key.name: i.value for i in plan.items}
    ids = {i.key.name: i.key.key_id for i in plan.items}
    assert values["CFG_TMODE_POS_TYPE"] == 0
    assert values["CFG_TMODE_ECEF_X"] == -269404442
    assert values["CFG_TMODE_ECEF_X_HP"] == 89
    assert (values["CFG_TMODE_ECEF_Z"], values["CFG_TMODE_ECEF_Z_HP"]) == (-1, 99)
    assert values["CFG_TMODE_FIXED_POS_ACC"] == 500  # acc_m defaults to 0.05
    assert ids["CFG_TMODE_ECEF_X"] == 0x40030003
    assert ids["CFG_TMODE_ECEF_Z_HP"] == 0x20030008
    assert ids["CFG_TMODE_FIXED_POS_ACC"] == 0x4003000F


def test_empty_settings_are_valid() -> None:
    plan = validate_config(minimal())
    assert plan.items == []
    assert plan.messages() == []
    assert plan.effective_config["baud"] == 115200
    assert plan.effective_config["verify_layer"] == "RAM"


def test_large_group_goes_as_a_transaction() -> None:
    from pyubx2 import UBX_CONFIG_DATABASE

    names = [n for n, (_, t) in UBX_CONFIG_DATABASE.items() if t == "U001" and "MSGOUT" in n][:130]
    plan = validate_config(minimal(cfg_key_settings=[{"key": n, "value": 0} for n in names]))
    messages = plan.messages()
    assert [(m.transaction, len(m.items)) for m in messages] == [
        (TXN_START, 64),
        (TXN_ONGOING, 64),
        (TXN_COMMIT, 2),
    ]


def test_every_problem_is_listed_with_its_field() -> None:
    cfg = {
        "f9t_uid": "XYZ",
        "apply_to_layers": ["RAM", "ROM"],
        "verify_layer": "FLASH",
        "cfg_key_settings": [
            {"key": "CFG_NOT_A_KEY", "value": 1},
            {"key": "CFG_TP_FREQ_TP1", "value": 1.9},
            {"key": "CFG_TP_FREQ_TP1", "value": 1},
            {"key": "CFG_TP_FREQ_TP1", "value": 2},
            {"value": 3},
            {"key": "CFG_TMODE_MODE", "value": 2},
        ],
        "position": {"format": "LLH", "lat_deg": 91, "lon_deg": 0, "height_m": 0, "acc_m": 0},
    }
    with pytest.raises(InvalidConfig) as info:
        validate_config(cfg)
    problems = info.value.problems
    text = "\n".join(problems)
    assert str(info.value) == text
    expected = [
        "device: required",
        "f9t_uid: 'XYZ'",
        "apply_to_layers[1]: 'ROM' is not one of RAM, BBR, FLASH",
        "verify_layer: verify_layer FLASH is not one of the layers written (RAM)",
        "position.lat_deg: 91 is outside [-90, 90]",
        "position.acc_m: 0 must be a number > 0",
        "cfg_key_settings[0].key: Undefined configuration database key CFG_NOT_A_KEY",
        "cfg_key_settings[1].value: CFG_TP_FREQ_TP1: 1.9 is not an integer",
        "cfg_key_settings[2].key: CFG_TP_FREQ_TP1 appears more than once",
        "cfg_key_settings[3].key: CFG_TP_FREQ_TP1 appears more than once",
        "cfg_key_settings[4]: must be an object",
        "cfg_key_settings[5].key: CFG_TMODE_MODE conflicts with position",
    ]
    for line in expected:
        assert any(p.startswith(line) for p in problems), f"{line!r} not in:\n{text}"
    assert len(problems) == len(expected)


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ("not a dict", "f9t_config: must be a JSON object"),
        (minimal(apply_to_layers=[]), "apply_to_layers: [] must be a non-empty list"),
        (minimal(apply_to_layers=["RAM", "ram"]), "apply_to_layers[1]: RAM appears more than once"),
        (minimal(baud=9600.5), "baud: 9600.5 is not a standard baud rate"),
        (minimal(device=" "), "device: ' ' is not a device path"),
        (minimal(position={"format": "XYZ"}), "position.format: 'XYZ' is not LLH or ECEF"),
        (minimal(position={"format": "ECEF", "x_m": 1, "y_m": 2}), "position.z_m: required"),
        (
            minimal(position={"format": "LLH", "lat_deg": 0, "lon_deg": 0, "height_m": 1e9}),
            "position.height_m: 1000000000 is outside [-1000, 20000]",
        ),
        (
            minimal(
                position={"format": "LLH", "lat_deg": 0, "lon_deg": 0, "height_m": 0, "x_m": 1}
            ),
            "position.x_m: does not belong to format LLH",
        ),
        (minimal(cfg_key_settings={"key": "x"}), "cfg_key_settings: must be a list"),
    ],
)
def test_single_problems(cfg: Any, message: str) -> None:
    with pytest.raises(InvalidConfig) as info:
        validate_config(cfg)
    assert any(p.startswith(message) for p in info.value.problems), info.value.problems


def test_layers_are_case_insensitive_and_verify_must_be_written() -> None:
    plan = validate_config(minimal(apply_to_layers=["ram", "Flash"], verify_layer="flash"))
    assert plan.set_mask == 5
    assert plan.poll_layer == 2
    assert plan.effective_config["apply_to_layers"] == ["RAM", "FLASH"]


def test_chip_merge_rule() -> None:
    file_cfg = load_f9t_config(SHIPPED)
    merged = chip_config(file_cfg, UID.lower())
    assert "f9t_chips" not in merged
    assert merged["device"] == "/dev/ttyACM1"
    assert merged["f9t_uid"] == UID
    assert len(merged["cfg_key_settings"]) == 40
    assert file_cfg.device == "/dev/ublox-f9t"  # the general settings are not modified
    with pytest.raises(ValueError, match="no chip has uid AAAAAAAAAA; the chips are: DF03A241BC"):
        chip_config(file_cfg, "AAAAAAAAAA")
