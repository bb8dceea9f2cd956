"""The generated protobuf modules are current, and the wire contract is the original's."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import FieldDescriptor as FD

from panoseti_appliance._proto import daq_data_pb2, ublox_control_pb2

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import gen_protos  # noqa: E402


def _file_proto(module: object) -> bytes:
    fdp = descriptor_pb2.FileDescriptorProto()
    module.DESCRIPTOR.CopyToProto(fdp)  # type: ignore[attr-defined]
    return fdp.SerializeToString(deterministic=True)


@pytest.mark.parametrize(
    ("stem", "module"), [("daq_data", daq_data_pb2), ("ublox_control", ublox_control_pb2)]
)
def test_generated_code_is_current(tmp_path: Path, stem: str, module: object) -> None:
    """Regenerate from protos/ and compare descriptors: stale generated code fails here."""
    gen_protos.generate(ROOT / "protos", tmp_path / "gen")
    spec = importlib.util.spec_from_file_location(
        f"fresh_{stem}", tmp_path / "gen" / f"{stem}_pb2.py"
    )
    assert spec is not None
    assert spec.loader is not None
    # The fresh module registers the same file name in the default pool; load it in a child pool.
    from google.protobuf import descriptor_pool

    fresh_src = (tmp_path / "gen" / f"{stem}_pb2.py").read_text()
    installed_src = Path(module.__file__).read_text()  # type: ignore[attr-defined]
    assert fresh_src == installed_src, f"{stem}_pb2.py is stale: run `make protos`"
    # *_pb2_grpc.pyi exists where mypy-protobuf is installed (the dev extra), as it is here.
    for suffix in ("_pb2_grpc.py", "_pb2.pyi", "_pb2_grpc.pyi"):
        fresh = (tmp_path / "gen" / f"{stem}{suffix}").read_text()
        installed = (Path(module.__file__).parent / f"{stem}{suffix}").read_text()  # type: ignore[attr-defined]
        assert fresh == installed, f"{stem}{suffix} is stale: run `make protos`"
    assert descriptor_pool.Default().FindFileByName(f"{stem}.proto") is not None
    assert _file_proto(module)


# (message, number, name, type, repeated, message/enum type full name) as the original shipped them;
# the type is a FieldDescriptor.TYPE_* name in lower case.
DAQDATA_FIELDS = [
    ("PanoImage", 1, "type", "enum", False, "daqdata.PanoImage.Type"),
    ("PanoImage", 2, "header", "message", False, "google.protobuf.Struct"),
    ("PanoImage", 3, "image_array", "uint32", True, None),
    ("PanoImage", 4, "shape", "uint32", True, None),
    ("PanoImage", 5, "bytes_per_pixel", "int32", False, None),
    ("PanoImage", 6, "file", "string", False, None),
    ("PanoImage", 7, "frame_number", "uint32", False, None),
    ("PanoImage", 8, "module_id", "uint32", False, None),
    ("StreamImagesResponse", 1, "name", "string", False, None),
    ("StreamImagesResponse", 2, "timestamp", "message", False, "google.protobuf.Timestamp"),
    ("StreamImagesResponse", 3, "message", "string", False, None),
    ("StreamImagesResponse", 4, "pano_image", "message", False, "daqdata.PanoImage"),
    ("StreamImagesRequest", 1, "stream_movie_data", "bool", False, None),
    ("StreamImagesRequest", 2, "stream_pulse_height_data", "bool", False, None),
    ("StreamImagesRequest", 3, "update_interval_seconds", "double", False, None),
    ("StreamImagesRequest", 4, "module_ids", "uint32", True, None),
    ("InitHpIoRequest", 1, "data_dir", "string", False, None),
    ("InitHpIoRequest", 2, "update_interval_seconds", "double", False, None),
    ("InitHpIoRequest", 3, "force", "bool", False, None),
    ("InitHpIoRequest", 4, "simulate_daq", "bool", False, None),
    ("InitHpIoRequest", 6, "module_ids", "uint32", True, None),
    ("InitHpIoResponse", 1, "success", "bool", False, None),
    ("InitHpIoResponse", 2, "error_message", "string", False, None),
    ("UploadImageRequest", 1, "pano_image", "message", False, "daqdata.PanoImage"),
]

UBLOX_FIELDS = [
    ("InitF9tRequest", 1, "f9t_config", "message", False, "google.protobuf.Struct"),
    ("InitF9tRequest", 2, "force_init", "bool", False, None),
    ("InitF9tResponse", 1, "init_status", "enum", False, "ubloxcontrol.InitF9tResponse.InitStatus"),
    ("InitF9tResponse", 2, "message", "string", False, None),
    ("InitF9tResponse", 3, "f9t_config", "message", False, "google.protobuf.Struct"),
    ("CaptureUbloxRequest", 1, "patterns", "string", True, None),
    ("CaptureUbloxResponse", 1, "type", "enum", False, "ubloxcontrol.CaptureUbloxResponse.Type"),
    ("CaptureUbloxResponse", 2, "name", "string", False, None),
    ("CaptureUbloxResponse", 3, "parsed_data", "message", False, "google.protobuf.Struct"),
    (
        "CaptureUbloxResponse",
        4,
        "pkt_unix_timestamp",
        "message",
        False,
        "google.protobuf.Timestamp",
    ),
    ("CaptureUbloxResponse", 5, "message", "string", False, None),
    ("CaptureUbloxResponse", 6, "payload", "bytes", False, None),
    ("PollRequest", 1, "patterns", "string", True, None),
    ("PollResponse", 1, "gnss_packet", "message", True, "ubloxcontrol.CaptureUbloxResponse"),
    ("PollCfgRequest", 1, "cfg_key_patterns", "string", True, None),
    ("PollCfgResponse", 1, "parsed_data", "message", False, "google.protobuf.Struct"),
]


def _methods(fd: Any, service: str) -> list[descriptor_pb2.MethodDescriptorProto]:
    """The methods of `service` as written in its file (types as `.package.Message`)."""
    proto = descriptor_pb2.ServiceDescriptorProto()
    fd.services_by_name[service].CopyToProto(proto)
    return list(proto.method)


@pytest.mark.parametrize(
    ("module", "package", "rows", "enums", "options"),
    [
        pytest.param(
            daq_data_pb2,
            "daqdata",
            DAQDATA_FIELDS,
            {"PanoImage.Type": {"UNDEFINED": 0, "PULSE_HEIGHT": 1, "MOVIE": 2}},
            ("io.grpc.daq_data", "DaqDataProto", "DAQD"),
            id="daqdata",
        ),
        pytest.param(
            ublox_control_pb2,
            "ubloxcontrol",
            UBLOX_FIELDS,
            {
                "InitF9tResponse.InitStatus": {
                    "UNDEFINED": 0,
                    "INVALID_CONFIG": 1,
                    "SUCCESS": 2,
                    "FAILURE": 3,
                },
                "CaptureUbloxResponse.Type": {"UNDEFINED": 0, "DATA": 1, "ERROR": 2},
            },
            ("io.grpc.ublox_control", "UbloxControlProto", "UBXCTL"),
            id="ubloxcontrol",
        ),
    ],
)
def test_package_fields_enums_and_options_are_the_originals(
    module: object,
    package: str,
    rows: list[tuple[Any, ...]],
    enums: dict[str, dict[str, int]],
    options: tuple[str, str, str],
) -> None:
    """`options`: the java_package, java_outer_classname and objc_class_prefix of the file."""
    fd = module.DESCRIPTOR  # type: ignore[attr-defined]
    assert fd.package == package
    for msg_name, number, name, typ, repeated, type_name in rows:
        msg = fd.message_types_by_name[msg_name]
        field = msg.fields_by_number[number]
        assert field.name == name, (msg_name, number)
        assert field.type == getattr(FD, f"TYPE_{typ.upper()}"), (msg_name, name)
        assert field.is_repeated == repeated, (msg_name, name)
        if type_name is not None:
            target = field.message_type or field.enum_type
            assert target.full_name == type_name, (msg_name, name)
        if repeated and typ in ("uint32",):
            # proto3 packs repeated scalars by default; the original's wire form.
            assert field.is_packed, (msg_name, name)
    for path, values in enums.items():
        msg_name, enum_name = path.split(".")
        enum = fd.message_types_by_name[msg_name].enum_types_by_name[enum_name]
        assert {v.name: v.number for v in enum.values} == values, path
    opts = fd.GetOptions()
    assert (opts.java_package, opts.java_outer_classname, opts.objc_class_prefix) == options


def test_daqdata_messages_and_service() -> None:
    fd = daq_data_pb2.DESCRIPTOR
    assert fd.GetOptions().java_multiple_files
    init_req = descriptor_pb2.DescriptorProto()
    fd.message_types_by_name["InitHpIoRequest"].CopyToProto(init_req)
    assert [(r.start, r.end) for r in init_req.reserved_range] == [(5, 6)]
    for unused in (
        "StreamHashpipeStatusRequest",
        "StreamHashpipeStatusResponse",
        "SetConfigurationRequest",
        "SetConfigurationResponse",
    ):
        assert unused in fd.message_types_by_name
    rpcs = {m.name: m for m in fd.services_by_name["DaqData"].methods}
    assert rpcs["StreamImages"].input_type.name == "StreamImagesRequest"
    assert rpcs["StreamImages"].output_type.name == "StreamImagesResponse"
    assert rpcs["InitHpIo"].input_type.name == "InitHpIoRequest"
    assert rpcs["Ping"].input_type.full_name == "google.protobuf.Empty"
    assert rpcs["Ping"].output_type.full_name == "google.protobuf.Empty"
    assert rpcs["UploadImages"].input_type.name == "UploadImageRequest"
    streaming = {m.name: (m.client_streaming, m.server_streaming) for m in _methods(fd, "DaqData")}
    assert streaming == {
        "StreamImages": (False, True),
        "InitHpIo": (False, False),
        "Ping": (False, False),
        "UploadImages": (True, False),
    }


def test_ubloxcontrol_service() -> None:
    methods = _methods(ublox_control_pb2.DESCRIPTOR, "UbloxControl")
    assert {m.name: (m.input_type, m.output_type, m.server_streaming) for m in methods} == {
        "InitF9t": (".ubloxcontrol.InitF9tRequest", ".ubloxcontrol.InitF9tResponse", False),
        "PollMessage": (".ubloxcontrol.PollRequest", ".ubloxcontrol.PollResponse", False),
        "CaptureUblox": (
            ".ubloxcontrol.CaptureUbloxRequest",
            ".ubloxcontrol.CaptureUbloxResponse",
            True,
        ),
    }
