"""The clients' pixel encodings, every-frame streams and batched uploads against the real daemon
(docs/clients.md, "Pixel encodings and every frame"), through the library and `panoseti daq`.

One daemon (uploads only, nothing else publishes) gets the real ph256 recording and a generated
img16 movie through `upload_images` in batches; streams in every encoding, opened before the
upload, must each deliver every one of those frames in upload order, with the PFF's own pixels
and nothing lost.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from panoseti_appliance import pff
from panoseti_appliance._proto import daq_data_pb2 as pb
from panoseti_appliance.cli.daq import image_json, image_line
from panoseti_appliance.daqdata.client import DaqDataClient
from panoseti_appliance.daqdata.sim.upload import pano_image
from panoseti_appliance.products import IMG16, PH256
from tests.daemons import Daemon
from tests.integration.test_cli_daq import LINE, daq, render_png
from tests.integration.test_client_rules import Server
from tests.integration.test_daqdata_support import DaqData, daqdata, until

PH_FILE = (
    Path(__file__).parents[1]
    / "data"
    / "start_2025-08-02T05_31_36Z.dp_ph256.bpp_2.module_254.seqno_0.pff"
)
MODULE = 254
PROBE_MODULE = 900
#: (name, encoding, compression, max_frames_per_response) of each stream; target "unix" means
#: the daemon's unix socket (auto encoding: RAW), else its loopback TCP address.
STREAMS = [
    ("packed", "packed", None, 1),
    ("raw", "raw", None, 16),
    ("lz4", None, "lz4", 5),
    ("zstd", "zstd", None, 1),
    ("auto-unix", None, None, 64),
]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaqData]:
    with daqdata(tmp_path_factory.mktemp("encodings")) as d:
        yield d


def unix_target(d: DaqData) -> str:
    return f"unix://{d.tmp / 'grpc' / 'daqdata.sock'}"


def uploads() -> list[tuple[pb.PanoImage, bytes]]:
    """The real ph256 frames and as many img16 frames, interleaved, with their PFF pixels."""
    ph = list(pff.iter_frames(PH_FILE))
    out = []
    for n, frame in enumerate(ph):
        movie = ((np.arange(IMG16.pixels) * 7 + n * 131) % 65536).astype("<u2").tobytes()
        quabos = {f"quabo_{q}": {"pkt_num": n, "pkt_tai": 1, "pkt_nsec": 2} for q in range(4)}
        out.append((pano_image(MODULE, PH256, frame.header, frame.pixels, n), frame.pixels))
        out.append((pano_image(MODULE, IMG16, quabos, movie, n), movie))
    return out


class Reader:
    """One every-frame stream of its own client, read in a thread into `images`."""

    def __init__(self, target: str, encoding: str | None, compression: str | None, batch: int):
        self.stop = threading.Event()
        self.client = DaqDataClient(hosts=[target])
        self.target = self.client.validate_daq_hosts(None)[0]
        self.images: list[dict[str, Any]] = []
        self.error: BaseException | None = None
        self._stream = self.client.stream_images(
            None,
            True,
            True,
            0,
            module_ids=[MODULE, PROBE_MODULE],
            timeout=120,
            stop_event=self.stop,
            every_frame=True,
            max_frames_per_response=batch,
            encoding=encoding,
            compression=compression,
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for image in self._stream:
                self.images.append(image)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def of(self, module: int) -> list[dict[str, Any]]:
        return [image for image in list(self.images) if image["module_id"] == module]

    def close(self) -> None:
        self.stop.set()
        self._thread.join(timeout=30)
        self.client.close()
        assert self.error is None, self.error


def test_every_encoding_delivers_every_uploaded_frame_in_order(node: DaqData) -> None:
    readers = {
        name: Reader(unix_target(node) if name == "auto-unix" else node.target, enc, comp, batch)
        for name, enc, comp, batch in STREAMS
    }
    try:
        # Every-frame streams queue what arrives after they subscribed: upload probes until
        # each stream has one, so that all of them are subscribed before the real upload.
        probe = pano_image(PROBE_MODULE, PH256, {"quabo_num": 0}, bytes(512), 0)
        with DaqDataClient(hosts=[node.target]) as uploader:

            def subscribed() -> bool:
                if all(r.of(PROBE_MODULE) for r in readers.values()):
                    return True
                uploader.upload_images(None, [probe])
                return False

            until(subscribed, what="a probe image on every stream")
            sent = uploads()
            uploader.upload_images(None, [image for image, _ in sent], batch=8, encoding="raw")
        expected = [(image.type, image.frame_number) for image, _ in sent]
        until(
            lambda: all(len(r.of(MODULE)) >= len(sent) for r in readers.values()),
            what="every frame on every stream",
        )
    finally:
        for reader in readers.values():
            reader.close()
    for name, reader in readers.items():
        got = reader.of(MODULE)
        kinds = {"PULSE_HEIGHT": pb.PanoImage.PULSE_HEIGHT, "MOVIE": pb.PanoImage.MOVIE}
        assert [(kinds[i["type"]], i["frame_number"]) for i in got] == expected, name
        for image, (_, raw) in zip(got, sent, strict=True):
            dp = PH256 if image["type"] == "PULSE_HEIGHT" else IMG16
            assert image["image_array"].dtype == dp.dtype, name
            assert np.array_equal(
                image["image_array"], np.frombuffer(raw, dp.raw_dtype).reshape(dp.shape)
            ), (name, image["frame_number"])
        assert all(image["frames_lost"] == 0 for image in reader.images), name
        assert reader.client.frames_lost == {reader.target: 0}, name
    ph = [i for i in readers["packed"].of(MODULE) if i["type"] == "PULSE_HEIGHT"]
    assert min(int(i["image_array"].min()) for i in ph) < 0  # negative pulse heights survive


def test_streams_ask_for_the_chosen_encoding(node: DaqData) -> None:
    """The raw responses name the encoding each option asked for (RAW on loopback by default)."""
    image = pano_image(MODULE + 1, IMG16, {}, bytes(2048), 1)
    with DaqDataClient(hosts=[node.target]) as client:
        client.upload_images(None, [image])
        seen = {}
        for name, encoding, compression in [
            ("auto", None, None),
            ("packed", "packed", None),
            ("zstd", None, "zstd"),
        ]:
            stream = client.stream_images(
                None,
                True,
                False,
                0,
                [MODULE + 1],
                parse_pano_images=False,
                encoding=encoding,
                compression=compression,
            )
            response = next(stream)
            stream.close()
            seen[name] = response.pano_image.pixel_encoding
    assert seen == {
        "auto": pb.PanoImage.RAW,
        "packed": pb.PanoImage.PACKED,
        "zstd": pb.PanoImage.BLOSC_ZSTD,
    }


def test_frames_lost_come_with_the_next_image_and_add_up(tmp_path: Path) -> None:
    """A stream queue of 4 frames and one upload request of 10: the daemon queues all ten at
    once, keeps the newest 4, and the first image delivered says 6 were lost."""
    with daqdata(tmp_path, {"daqdata": {"every_frame_queue_frames": 4}}) as d:
        reader = Reader(d.target, "raw", None, 2)
        try:
            probe = pano_image(PROBE_MODULE, PH256, {"quabo_num": 0}, bytes(512), 0)
            with DaqDataClient(hosts=[d.target]) as uploader:
                probes = 0

                def drained() -> bool:
                    # Subscribed, and every probe sent so far delivered: the queue is empty.
                    nonlocal probes
                    if probes and len(reader.of(PROBE_MODULE)) == probes:
                        return True
                    if not reader.of(PROBE_MODULE):
                        uploader.upload_images(None, [probe])
                        probes += 1
                    return False

                until(drained, what="the probes delivered")
                frames = [image for image, _ in uploads()[:10]]
                uploader.upload_images(None, frames, batch=10)
            until(lambda: len(reader.of(MODULE)) == 4, what="the 4 frames kept")
        finally:
            reader.close()
    got = reader.of(MODULE)
    assert [i["frame_number"] for i in got] == [f.frame_number for f in frames[6:]]
    assert [i["frames_lost"] for i in got] == [6, 0, 0, 0]
    assert reader.client.frames_lost == {reader.target: 6}
    # What `panoseti daq stream` prints for them.
    assert image_line(d.target, got[0]).endswith(" frames_lost=6")
    assert "frames_lost" not in image_line(d.target, got[1])
    assert json.loads(image_json(d.target, got[0]))["frames_lost"] == 6


def test_an_unreadable_image_in_a_response_is_skipped_alone() -> None:
    """A response of three images whose middle one has RAW pixels of the wrong length: the
    other two arrive, the first still carrying the response's frames_lost."""
    good = [pano_image(3, PH256, {}, bytes(512), n, pb.PanoImage.RAW) for n in range(3)]
    good[1].pixel_data = bytes(100)

    def plan(context: Any, module_id: int) -> Iterator[pb.StreamImagesResponse]:
        yield pb.StreamImagesResponse(pano_image=good[0], more_images=good[1:], frames_lost=9)

    server = Server(3, [plan])
    try:
        with DaqDataClient(hosts=[server.target]) as client:
            images = list(client.stream_images(None, True, True, 0, every_frame=True))
            request = server.servicer.stream_requests[0]
            assert client.frames_lost == {server.target: 9}
    finally:
        server.stop()
    assert [(i["frame_number"], i["frames_lost"]) for i in images] == [(0, 9), (2, 0)]
    assert (request.every_frame, request.pixel_encoding) == (True, pb.PanoImage.RAW)


def test_cli_stream_every_frame_compressed(sim_daqdata: Daemon) -> None:
    result = daq(
        "stream",
        *("--every-frame", "--frames-per-response", "8", "--compression", "lz4"),
        *("--json", "--count", "40"),
        target=sim_daqdata.target,
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 40
    assert sum(r["frames_lost"] for r in records) == 0
    numbers: dict[tuple[int, str], list[int]] = {}
    for record in records:
        numbers.setdefault((record["module_id"], record["dp"]), []).append(record["frame_number"])
    for key, seen in numbers.items():  # every frame of each module and product, in order
        assert seen == list(range(seen[0], seen[0] + len(seen))), key
    lines = daq(
        "stream", "--every-frame", "--encoding", "packed", "--count", "4", target=sim_daqdata.target
    )
    assert lines.returncode == 0, lines.stderr
    assert all(LINE.match(line) for line in lines.stdout.splitlines()), lines.stdout


def test_cli_view_of_an_every_frame_stream(sim_daqdata: Daemon, tmp_path: Path) -> None:
    view = render_png(sim_daqdata, tmp_path, "view", "--every-frame", "--refresh-period", "0.2")
    assert f"wrote {tmp_path / 'view.png'}" in view


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--frames-per-response", "4"], "--frames-per-response needs --every-frame"),
        (["--every-frame", "--frames-per-response", "0"], "must be at least 1, got 0"),
        (["--encoding", "packed", "--compression", "zstd"], "drop --encoding packed"),
    ],
)
def test_cli_stream_options_that_cannot_work(args: list[str], message: str) -> None:
    result = daq("--host", "127.0.0.1:1", "stream", *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
