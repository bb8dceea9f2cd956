"""The constants of enumeration (E) configuration keys whose values the appliance checks.

pyubx2's database gives every key its type (E1 is one unsigned byte) but not which constants an
enumeration defines, so without this table `CFG_TP_PULSE_DEF: 99` would pass every check and be
refused only by the receiver. The constants are those of the ZED-F9T interface description
(firmware TIM 2.20, "Configuration items"), for the keys a timing node sets: time pulses, time
mode, navigation and the serial ports. Any other E key is checked against its width only.
"""

from __future__ import annotations

_TIME_SYSTEMS = {0: "UTC", 1: "GPS", 2: "GLO", 3: "BDS", 4: "GAL", 5: "NAVIC"}
_DATABITS = {0: "EIGHT", 1: "SEVEN"}
_PARITY = {0: "NONE", 1: "ODD", 2: "EVEN"}
_STOPBITS = {0: "HALF", 1: "ONE", 2: "ONEHALF", 3: "TWO"}

#: key name -> {value: constant name}
ENUMERATIONS: dict[str, dict[int, str]] = {
    "CFG_TP_PULSE_DEF": {0: "PERIOD", 1: "FREQ"},
    "CFG_TP_PULSE_LENGTH_DEF": {0: "RATIO", 1: "LENGTH"},
    "CFG_TP_TIMEGRID_TP1": _TIME_SYSTEMS,
    "CFG_TP_TIMEGRID_TP2": _TIME_SYSTEMS,
    "CFG_TMODE_MODE": {0: "DISABLED", 1: "SURVEY_IN", 2: "FIXED"},
    "CFG_TMODE_POS_TYPE": {0: "ECEF", 1: "LLH"},
    "CFG_RATE_TIMEREF": _TIME_SYSTEMS,
    "CFG_NAVSPG_FIXMODE": {1: "2DONLY", 2: "3DONLY", 3: "AUTO"},
    "CFG_NAVSPG_DYNMODEL": {
        0: "PORT",
        2: "STAT",
        3: "PED",
        4: "AUTOMOT",
        5: "SEA",
        6: "AIR1",
        7: "AIR2",
        8: "AIR4",
        9: "WRIST",
        10: "BIKE",
        11: "MOWER",
        12: "ESCOOTER",
    },
    "CFG_UART1_DATABITS": _DATABITS,
    "CFG_UART1_PARITY": _PARITY,
    "CFG_UART1_STOPBITS": _STOPBITS,
    "CFG_UART2_DATABITS": _DATABITS,
    "CFG_UART2_PARITY": _PARITY,
    "CFG_UART2_STOPBITS": _STOPBITS,
}


def describe(constants: dict[int, str]) -> str:
    """`0 (PERIOD), 1 (FREQ)`: the values an operator may write, with their meaning."""
    return ", ".join(f"{value} ({name})" for value, name in constants.items())
