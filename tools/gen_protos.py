"""Generate the Python protobuf/gRPC modules of panoseti_appliance from protos/*.proto.

Called by the build (setup.py build_py) and by `make protos`; the output directory is
panoseti_appliance/_proto, which is never edited by hand and not committed.

The generated *_pb2_grpc.py files import their message modules as top-level modules
(`import daq_data_pb2`); inside a package that import fails, so it is rewritten to a relative one.

protoc types the messages itself (*_pb2.pyi) but not the gRPC stubs and servicers; where
mypy-protobuf is installed (the dev extra) its plugin writes *_pb2_grpc.pyi for them, so that mypy
checks every RPC call. The build needs only grpcio-tools and leaves them out.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import sys
from pathlib import Path

HEADER = "# Generated from protos/ by tools/gen_protos.py during the build. Do not edit.\n"


def generate(proto_dir: Path, out_dir: Path) -> list[Path]:
    """Run protoc on every .proto in proto_dir: *_pb2.py, *_pb2.pyi, *_pb2_grpc.py (and .pyi)."""
    import grpc_tools
    from grpc_tools import protoc

    out_dir.mkdir(parents=True, exist_ok=True)
    # A file of an earlier run that this one does not write (a removed .proto, or stubs made while
    # mypy-protobuf was installed) must not survive it.
    for stale in out_dir.glob("*_pb2*.py*"):
        stale.unlink()
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    protos = sorted(proto_dir.glob("*.proto"))
    if not protos:
        raise SystemExit(f"no .proto files in {proto_dir}")
    args = [
        "grpc_tools.protoc",
        f"-I{proto_dir}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *_grpc_stub_args(out_dir),
        *[str(p) for p in protos],
    ]
    if protoc.main(args) != 0:
        raise SystemExit(f"protoc failed on {proto_dir}")
    stems = [p.stem for p in protos]
    written: list[Path] = []
    for path in sorted(out_dir.glob("*_pb2*.py*")):
        text = path.read_text()
        for stem in stems:
            text = re.sub(
                rf"^import {stem}_pb2 as ", f"from . import {stem}_pb2 as ", text, flags=re.M
            )
        if not text.startswith(HEADER):
            text = HEADER + text
        path.write_text(text)
        written.append(path)
    init = out_dir / "__init__.py"
    init.write_text(HEADER + '"""Generated protobuf and gRPC modules (see protos/)."""\n')
    written.append(init)
    return written


def _grpc_stub_args(out_dir: Path) -> list[str]:
    """protoc's arguments for mypy-protobuf's *_pb2_grpc.pyi, none where it is not installed."""
    if importlib.util.find_spec("mypy_protobuf") is None:
        return []
    # pip puts the plugin beside the interpreter, which is not on PATH unless a venv is activated.
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    plugin = shutil.which("protoc-gen-mypy_grpc", path=search)
    if plugin is None:
        raise SystemExit("mypy-protobuf is installed but its protoc-gen-mypy_grpc is not found")
    # The generated servicer base classes answer UNIMPLEMENTED for a method a subclass leaves
    # out, so their stubs must not declare the methods abstract.
    return [
        f"--plugin=protoc-gen-mypy_grpc={plugin}",
        "--mypy_grpc_opt=generate_concrete_servicer_stubs,quiet",
        f"--mypy_grpc_out={out_dir}",
    ]


if __name__ == "__main__":
    root = Path(__file__).resolve().parent.parent
    proto_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else root / "protos"
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else root / "panoseti_appliance" / "_proto"
    for p in generate(proto_dir, out):
        print(f"generated {p}")
