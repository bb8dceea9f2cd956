"""The real `grpcurl` binary against the daemon: reflection, Ping and a few streamed images."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.integration.test_daqdata_support import DaqData, daqdata, send_frame

GRPCURL = Path(sys.executable).parent / "grpcurl"


def _grpcurl(
    d: DaqData, *words: str, flags: tuple[str, ...] = (), check: bool = True
) -> subprocess.CompletedProcess[str]:
    """`grpcurl -plaintext FLAGS TARGET WORDS`, e.g. words ("list",) or ("describe", "X")."""
    result = subprocess.run(
        [str(GRPCURL), "-plaintext", *flags, d.target, *words],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def _json_objects(text: str) -> list[dict[str, object]]:
    """grpcurl prints one pretty JSON object per response; split them."""
    decoder = json.JSONDecoder()
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        obj, end = decoder.raw_decode(text, pos)
        out.append(obj)
        pos = end
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def test_grpcurl_lists_describes_pings_and_streams(tmp_path: Path) -> None:
    with daqdata(tmp_path) as d:
        services = _grpcurl(d, "list").stdout.split()
        assert "daqdata.DaqData" in services
        assert "grpc.health.v1.Health" in services
        assert any(s.startswith("grpc.reflection.") for s in services)

        methods = _grpcurl(d, "list", "daqdata.DaqData").stdout.split()
        assert methods == [
            "daqdata.DaqData.InitHpIo",
            "daqdata.DaqData.Ping",
            "daqdata.DaqData.StreamImages",
            "daqdata.DaqData.UploadImages",
        ]

        described = _grpcurl(d, "describe", "daqdata.PanoImage").stdout
        assert "repeated uint32 image_array = 3" in described
        assert ".google.protobuf.Struct header = 2" in described

        assert _json_objects(_grpcurl(d, "daqdata.DaqData/Ping").stdout) == [{}]

        producer = d.producer("ph256")
        producer.connect()
        for module in (1, 2, 3):
            send_frame(producer, module)
        request = json.dumps(
            {
                "stream_movie_data": False,
                "stream_pulse_height_data": True,
                "update_interval_seconds": 0,
            }
        )
        # The stream never ends by itself: -max-time cuts it after the first tick's images.
        streamed = _grpcurl(
            d,
            "daqdata.DaqData/StreamImages",
            flags=("-max-msg-sz", "10000000", "-max-time", "3", "-d", request),
            check=False,
        )
        responses = _json_objects(streamed.stdout)
        images = [r["pano_image"] for r in responses]
        assert [img["module_id"] for img in images] == [1, 2, 3]  # type: ignore[index]
        for image in images:
            assert image["type"] == "PULSE_HEIGHT"  # type: ignore[index]
            assert image["shape"] == [16, 16]  # type: ignore[index]
            assert len(image["image_array"]) == 256  # type: ignore[index]
        assert all("timestamp" in r for r in responses)
        assert "DeadlineExceeded" in streamed.stderr
        producer.close()
