"""Run an InitF9t plan against a receiver over a UbxLink (docs/ublox.md, "InitF9t: what happens").

Device-side checks that fail raise `InitFailure` (reported as init_status=FAILURE with the
message); a vanished device raises `LinkLost` (a gRPC UNAVAILABLE). The VALGET helper is shared
with PollMessage so both consume the trailing ACK the same way.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from pyubx2 import POLL, UBXMessage

from panoseti_appliance.runtime.logs import fields
from panoseti_appliance.ublox.parsed import UbxFrame
from panoseti_appliance.ublox.server.link import ACK_ACK, ACK_CLASS, UbxLink, ack_keys
from panoseti_appliance.ublox.server.plan import (
    TXN_NONE,
    F9tPlan,
    PlanItem,
    ValsetMessage,
    chunked,
)
from panoseti_appliance.ublox.values import CfgKey, display_value, values_equal

log = logging.getLogger(__name__)

CFG_CLASS, VALSET_ID, VALGET_ID = 0x06, 0x8A, 0x8B
MON_VER = (0x0A, 0x04)
SEC_UNIQID = (0x27, 0x03)
MON_VER_TIMEOUT_S = 2.5
UNIQID_TIMEOUT_S = 3.0
SIGNAL_PAUSE_S = 0.3
EXPECTED_MODEL_PREFIX = "ZED-F9T"
SUCCESS_MESSAGE = "F9T initialized, configured, and verified successfully."


class InitFailure(Exception):
    """The device answered (or stayed silent) in a way that fails InitF9t: init_status=FAILURE."""


@dataclass(frozen=True)
class ReceiverInfo:
    model: str
    firmware: str
    protocol: str
    uid: str

    def describe(self) -> str:
        return (
            f"Model {self.model}, firmware {self.firmware or 'unknown'}, "
            f"protocol {self.protocol or 'unknown'}, UID {self.uid}"
        )


def poll_bytes(cls_id: int, msg_id: int) -> bytes:
    """An empty-payload poll frame for (class, id)."""
    frame: bytes = UBXMessage(cls_id, msg_id, POLL).serialize()
    return frame


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.split(b"\x00", 1)[0].decode("ascii", "replace").strip()
    return str(value).strip()


def mon_ver_fields(frame: UbxFrame) -> tuple[str, str, str]:
    """(model, FWVER, PROTVER) from a MON-VER frame; model UNKNOWN when no `MOD=` extension."""
    model, fw, prot = "UNKNOWN", "", ""
    exts = sorted(k for k in vars(frame.message) if k.startswith("extension_"))
    for name in exts:
        text = _text(getattr(frame.message, name))
        if text.startswith("MOD=") and model == "UNKNOWN":
            model = text[4:].strip()
        elif text.startswith("FWVER=") and not fw:
            fw = text[6:].strip()
        elif text.startswith("PROTVER=") and not prot:
            prot = text[8:].strip()
    return model, fw, prot


def uid_string(frame: UbxFrame) -> str:
    """SEC-UNIQID's 5 uniqueId bytes as a little-endian integer in 10 upper-case hex digits."""
    return f"{int.from_bytes(frame.payload[4:9], 'little'):010X}"


async def poll_one(link: UbxLink, cls_id: int, msg_id: int, timeout: float) -> UbxFrame | None:
    """Send an empty poll and wait for the first frame of that class/id received after it."""
    frames = await link.request(poll_bytes(cls_id, msg_id), {(cls_id, msg_id)}, timeout=timeout)
    return frames[-1] if frames else None


async def check_model(link: UbxLink) -> tuple[str, str, str]:
    frame = await poll_one(link, *MON_VER, timeout=MON_VER_TIMEOUT_S)
    if frame is None:
        raise InitFailure("No MON-VER response")
    model, fw, prot = mon_ver_fields(frame)
    if not model.startswith(EXPECTED_MODEL_PREFIX):
        raise InitFailure(f"Model {model} does not match expected prefix {EXPECTED_MODEL_PREFIX}.")
    return model, fw, prot


async def check_uid(link: UbxLink, expected: str) -> str:
    frame = await poll_one(link, *SEC_UNIQID, timeout=UNIQID_TIMEOUT_S)
    if frame is None:
        raise InitFailure("Timeout waiting for SEC-UNIQID response from device.")
    uid = uid_string(frame)
    if uid.upper() != expected.strip().upper():
        raise InitFailure(f"Detected F9T UID {uid} does not match client UID {expected}.")
    return uid


def _valset_bytes(message: ValsetMessage, layers: int) -> bytes:
    data = [(item.key.key_id, item.value) for item in message.items]
    frame: bytes = UBXMessage.config_set(layers, message.transaction, data).serialize()
    return frame


def _applied_note(messages: list[ValsetMessage], failed: ValsetMessage) -> str:
    """What stays applied after `failed` was rejected (a NAKed transaction cancels its group)."""
    earlier_groups = sorted({m.group for m in messages if m.group < failed.group})
    done = sum(len(m.items) for m in messages if m.group < failed.group)
    if failed.transaction == TXN_NONE:
        this = "nothing of this message was applied"
    else:
        this = f"the transaction of group {failed.group} was cancelled"
    if earlier_groups:
        before = f"groups {', '.join(map(str, earlier_groups))} ({done} keys) stay applied"
    else:
        before = "nothing was applied before"
    return f"{this}; {before}."


async def write_plan(link: UbxLink, plan: F9tPlan, ack_timeout: float) -> None:
    """Send every VALSET of the plan, each acknowledged by ACK-ACK for 0x06/0x8A."""
    messages = plan.messages()
    ack, nak = ack_keys(CFG_CLASS, VALSET_ID)
    for message in messages:
        frames = await link.request(
            _valset_bytes(message, plan.set_mask), {ack, nak}, timeout=ack_timeout
        )
        keys = ", ".join(item.key.name for item in message.items)
        where = f"CFG-VALSET {message.index}/{len(messages)} (keys {keys})"
        if frames is None:
            raise InitFailure(f"{where} not acknowledged; {_applied_note(messages, message)}")
        if frames[-1].msg_id != ACK_ACK:
            raise InitFailure(f"{where} NAKed; {_applied_note(messages, message)}")
        last_of_group = message is messages[-1] or messages[message.index].group != message.group
        if last_of_group and _is_signal_group(message.items):
            # The receiver restarts GNSS after signal changes; give it a moment.
            await asyncio.sleep(SIGNAL_PAUSE_S)


def _is_signal_group(items: tuple[PlanItem, ...]) -> bool:
    return bool(items) and items[0].key.name.startswith("CFG_SIGNAL_")


async def valget(
    link: UbxLink, layer: int, keys: list[CfgKey], timeout: float
) -> tuple[UbxFrame | None, str | None]:
    """One CFG-VALGET (≤ 64 keys) with its trailing ACK consumed.

    Returns (VALGET frame, None) on success, (None, "NAKed") on ACK-NAK and (None, "no answer")
    on timeout.
    """
    request = UBXMessage.config_poll(layer, 0, [k.key_id for k in keys]).serialize()
    ack, nak = ack_keys(CFG_CLASS, VALGET_ID)
    frames = await link.request(
        request, {(CFG_CLASS, VALGET_ID), ack, nak}, final={ack, nak}, timeout=timeout
    )
    if frames is None:
        return None, "no answer"
    if frames[-1].msg_cls == ACK_CLASS and frames[-1].msg_id != ACK_ACK:
        return None, "NAKed"
    answers = [f for f in frames if (f.msg_cls, f.msg_id) == (CFG_CLASS, VALGET_ID)]
    if not answers:
        return None, "no answer"
    return answers[-1], None


async def verify(link: UbxLink, plan: F9tPlan, ack_timeout: float) -> None:
    """Read every planned key back from `verify_layer` and compare (R4 with tolerance)."""
    problems: list[str] = []
    for chunk in chunked(plan.items):
        frame, err = await valget(link, plan.poll_layer, [i.key for i in chunk], ack_timeout)
        if err == "no answer":
            raise InitFailure(
                f"CFG-VALGET on layer {plan.verify_layer} not answered "
                f"(keys {', '.join(i.key.name for i in chunk)})"
            )
        for item in chunk:
            got = getattr(frame.message, item.key.name, None) if frame is not None else None
            if not values_equal(item.key, item.value, got):
                shown = "missing" if got is None else display_value(got)
                problems.append(
                    f"Key: {item.key.name}, Wanted: {display_value(item.value)}, Got: {shown}"
                )
    if problems:
        raise InitFailure(
            f"Configuration verification failed for {len(problems)} items on layer "
            f"{plan.verify_layer}:\n" + "\n".join(problems)
        )


async def run_plan(link: UbxLink, plan: F9tPlan, ack_timeout: float) -> ReceiverInfo:
    """Steps 6-9: model, UID, write, verify. Returns what was found on success."""
    model, fw, prot = await check_model(link)
    uid = await check_uid(link, plan.f9t_uid)
    if plan.items:
        await write_plan(link, plan, ack_timeout)
        await verify(link, plan, ack_timeout)
    info = ReceiverInfo(model, fw, prot, uid)
    log.info(
        "F9T %s on %s configured with %d keys",
        info.describe(),
        plan.device,
        len(plan.items),
        extra=fields(device=plan.device),
    )
    return info
