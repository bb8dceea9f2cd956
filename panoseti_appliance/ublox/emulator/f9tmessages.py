"""Frames the emulated ZED-F9T sends: MON-VER, SEC-UNIQID, ACKs and the periodic timing messages.

Contents follow the real capture in tests/data/ubx_packets.jsonl (docs/emulator.md): TIM-TP
describes the next pulse with `towMS`/`week` in the UTC time scale, NAV-TIMEUTC carries `iTOW`
in GPS time (UTC + 18 s) and NAV-PVT reports a time-only fix at the configured position.
"""

from __future__ import annotations

import calendar
import struct
import time

from panoseti_appliance.ublox.ubxframes import build_frame

CLS_NAV, CLS_ACK, CLS_CFG, CLS_MON, CLS_TIM, CLS_SEC = 0x01, 0x05, 0x06, 0x0A, 0x0D, 0x27
MON_VER = (CLS_MON, 0x04)
SEC_UNIQID = (CLS_SEC, 0x03)
TIM_TP = (CLS_TIM, 0x01)
NAV_TIMEUTC = (CLS_NAV, 0x21)
NAV_PVT = (CLS_NAV, 0x07)
CFG_VALSET = (CLS_CFG, 0x8A)
CFG_VALGET = (CLS_CFG, 0x8B)
ACK_ACK, ACK_NAK = 0x01, 0x00

#: GPS - UTC in seconds since 2017-01-01.
LEAP_SECONDS = 18
GPS_EPOCH = calendar.timegm((1980, 1, 6, 0, 0, 0))
WEEK_S = 7 * 86400

SW_VERSION = "EXT CORE 1.00 (a8e5a5)"
HW_VERSION = "00190000"
FW_VERSION = "TIM 2.20"
PROT_VERSION = "29.20"


def _text(value: str, size: int) -> bytes:
    return value.encode("ascii")[:size].ljust(size, b"\x00")


def mon_ver(model: str) -> bytes:
    """MON-VER as a ZED-F9T with TIM 2.20 firmware reports it; `model` goes after `MOD=`."""
    extensions = (
        "ROM BASE 0x118B2060",
        f"FWVER={FW_VERSION}",
        f"PROTVER={PROT_VERSION}",
        f"MOD={model}",
        "GPS;GLO;GAL;BDS",
        "SBAS;QZSS",
        "NAVIC",
    )
    payload = _text(SW_VERSION, 30) + _text(HW_VERSION, 10)
    payload += b"".join(_text(ext, 30) for ext in extensions)
    return build_frame(*MON_VER, payload)


def sec_uniqid(unique_id: int) -> bytes:
    """SEC-UNIQID v1; the 5-byte id goes little-endian, so 0xDF03A241BC is `bc 41 a2 03 df`."""
    return build_frame(*SEC_UNIQID, bytes((1, 0, 0, 0)) + unique_id.to_bytes(5, "little"))


def ack(cls_id: int, msg_id: int, ok: bool) -> bytes:
    """ACK-ACK (ok) or ACK-NAK naming the class and id of the message it answers."""
    return build_frame(CLS_ACK, ACK_ACK if ok else ACK_NAK, bytes((cls_id, msg_id)))


def gnss_week_tow(unix_s: float, offset_s: int = 0) -> tuple[int, int]:
    """(week, time of week in ms) of a UTC instant, shifted by `offset_s` (18 gives GPS time)."""
    ms = round((unix_s - GPS_EPOCH + offset_s) * 1000)
    return ms // (WEEK_S * 1000), ms % (WEEK_S * 1000)


def tim_tp(pulse_unix_s: float, q_err_ps: int) -> bytes:
    """TIM-TP for the pulse at `pulse_unix_s`: UTC time base, RAIM active, GNSS ref 15, USNO."""
    week, tow_ms = gnss_week_tow(pulse_unix_s)
    flags = 0x01 | 0x02 | (2 << 2)  # timeBase=UTC, utc available, raim=2
    ref_info = 15 | (3 << 4)  # timeRefGnss=15 (none), utcStandard=3 (USNO)
    payload = struct.pack("<IIiHBB", tow_ms, 0, q_err_ps, week, flags, ref_info)
    return build_frame(*TIM_TP, payload)


def _utc_fields(unix_s: float) -> tuple[int, int, int, int, int, int]:
    t = time.gmtime(int(unix_s))
    return t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec


def nav_timeutc(epoch_unix_s: float, nano: int, t_acc_ns: int) -> bytes:
    """NAV-TIMEUTC of an epoch: iTOW in GPS time, UTC date and time, all valid flags, USNO."""
    _, itow = gnss_week_tow(epoch_unix_s, LEAP_SECONDS)
    valid = 0x01 | 0x02 | 0x04 | (3 << 4)  # validTOW, validWKN, validUTC, utcStandard=3
    payload = struct.pack("<IIiHBBBBBB", itow, t_acc_ns, nano, *_utc_fields(epoch_unix_s), valid)
    return build_frame(*NAV_TIMEUTC, payload)


def nav_pvt(
    epoch_unix_s: float, nano: int, t_acc_ns: int, llh: tuple[float, float, float]
) -> bytes:
    """NAV-PVT of an epoch: fixType 5 (time only), gnssFixOK, at the surveyed position `llh`."""
    _, itow = gnss_week_tow(epoch_unix_s, LEAP_SECONDS)
    lat_deg, lon_deg, height_m = llh
    height_mm = round(height_m * 1000)
    payload = struct.pack(
        "<IHBBBBBBIiBBBBiiiiIIiiiiiIIHH4xihH",
        itow,
        *_utc_fields(epoch_unix_s),
        0x07,  # validDate, validTime, fullyResolved
        t_acc_ns,
        nano,
        5,  # fixType: time only
        0x01,  # gnssFixOK
        0xE0,  # confirmedAvai, confirmedDate, confirmedTime
        24,  # numSV
        round(lon_deg * 1e7),
        round(lat_deg * 1e7),
        height_mm,
        height_mm,  # hMSL: no geoid model in the emulator
        0,  # hAcc: fixed position
        0,  # vAcc
        0,
        0,
        0,  # velN, velE, velD
        0,  # gSpeed
        0,  # headMot
        0,  # sAcc
        0,  # headAcc
        100,  # pDOP 1.00
        0,  # flags3
        0,  # headVeh
        0,  # magDec
        0,  # magAcc
    )
    return build_frame(*NAV_PVT, payload)


def nmea_sentence(body: str) -> bytes:
    """`$body*CS\\r\\n` with its XOR checksum, as the receiver interleaves on the same port."""
    cs = 0
    for ch in body.encode("ascii"):
        cs ^= ch
    return f"${body}*{cs:02X}\r\n".encode("ascii")
