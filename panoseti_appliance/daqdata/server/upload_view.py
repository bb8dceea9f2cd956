"""UploadImageRequest read as a view whose `image_array` is the packed field's bytes.

A packed repeated field and a `bytes` field are the same on the wire (one length-delimited
field), so a message that declares PanoImage.image_array as `bytes` parses an original
client's request without decoding its 1 024 varints into Python integers: parsing, sizing and
checking an img16 upload that way costs about a third of doing it on the real PanoImage
(docs/performance.md). The view's descriptors are derived here from the real ones, changing only
that field, so a field added to PanoImage is in the view too. protobuf has no switch for "leave
this packed field undecoded", hence the derived descriptor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, struct_pb2

from panoseti_appliance._proto import daq_data_pb2

if TYPE_CHECKING:
    from google.protobuf.message import Message

_PACKAGE = "daqdata.upload_view"
_MESSAGES = ("PanoImage", "UploadImageRequest")


def _view_file() -> descriptor_pb2.FileDescriptorProto:
    """daq_data.proto's PanoImage and UploadImageRequest in a package of their own, image_array
    declared `bytes`."""
    real = descriptor_pb2.FileDescriptorProto()
    daq_data_pb2.DESCRIPTOR.CopyToProto(real)
    view = descriptor_pb2.FileDescriptorProto(
        name="panoseti_appliance/daqdata/upload_view.proto",
        package=_PACKAGE,
        syntax=real.syntax,
        dependency=[struct_pb2.DESCRIPTOR.name],
    )
    for message in real.message_type:
        if message.name in _MESSAGES:
            view.message_type.add().CopyFrom(message)
    for message in view.message_type:
        for field in message.field:
            if field.type_name.startswith(".daqdata."):
                field.type_name = field.type_name.replace(".daqdata.", f".{_PACKAGE}.", 1)
            if message.name == "PanoImage" and field.name == "image_array":
                field.type = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
                field.label = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
                field.ClearField("options")
    return view


def _classes() -> dict[str, type[Message]]:
    pool = descriptor_pool.DescriptorPool()
    struct_file = descriptor_pb2.FileDescriptorProto()
    struct_pb2.DESCRIPTOR.CopyToProto(struct_file)
    pool.Add(struct_file)
    pool.Add(_view_file())
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{name}"))
        for name in _MESSAGES
    }


_CLASSES = _classes()
#: The view classes. Typed as the real ones, which they match field for field except that
#: `image_array` is `bytes` here: code reading it must say which it has (upload.py does).
PanoImageView = cast("type[daq_data_pb2.PanoImage]", _CLASSES["PanoImage"])
UploadImageRequestView = cast(
    "type[daq_data_pb2.UploadImageRequest]", _CLASSES["UploadImageRequest"]
)


def viewed_packed(image: daq_data_pb2.PanoImage) -> bytes | None:
    """A view image's image_array, the packed varints as they arrived; None for a real one."""
    data: Any = image.image_array
    return data if isinstance(data, bytes) else None
