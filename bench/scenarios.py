"""The measured scenarios 1-5 and 8 (6 and 7 are in encodings.py), one function each.

Each returns its runs as plain dicts (the JSON results): a `run` label, the figures, and the
problems seen (ERROR lines of the daemon, streams or uploads that ended on their own); a run
whose feature the daemon lacks has `unavailable` with the reason instead of figures. Every run
has a daemon of its own, started fresh.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from bench.ceiling import measure_ceiling
from bench.feeds import HashpipeLoad, UploadPlan
from bench.measure import Window, run_loads
from bench.node import running_node
from bench.proc import growth
from bench.readers import ReadPlan
from panoseti_appliance._proto import daq_data_pb2 as pb

Features = Mapping[str, Mapping[str, Any]]
Run = dict[str, Any]

#: Images per UploadImageRequest in the batched runs.
UPLOAD_BATCH = 64
#: Frames per response asked by the throughput every-frame readers.
EVERY_FRAME_BATCH = 64
SNAPSHOT_1MS = ReadPlan()
EVERY_FRAME = ReadPlan(every_frame=True, per_response=EVERY_FRAME_BATCH)
FOUR_MODULES = (1, 2, 3, 4)


def missing(features: Features, *names: str) -> str | None:
    """Why a run needing these features cannot run, or None."""
    reasons = [f"{n}: {features[n]['why']}" for n in names if not features[n]["available"]]
    return "; ".join(reasons) or None


def _images(window: Window) -> list[int]:
    return [images for _, images, _ in window.streams()]


def _common(window: Window) -> Run:
    return {"cpu_percent": window.cpu_percent, "problems": window.problems}


def _rates(window: Window) -> Run:
    per_client = [window.per_s(n) for n in _images(window)]
    out: Run = {}
    if per_client:
        out["client_per_s"] = per_client
    return out


# ---- 1: uploads ------------------------------------------------------------------------------


def uploads(seconds: float, features: Features, uploaders: int, repeat: int = 1) -> list[Run]:
    """Ceiling, then UploadImages flat out with one snapshot client at 1 ms; each `repeat`
    times, the ceiling just before each round of upload runs."""
    return median_round([_upload_round(seconds, features, uploaders) for _ in range(repeat)])


def median_round(rounds: list[list[Run]]) -> list[Run]:
    """Each run of scenario 1 as its median round (by the ceiling's rate or the images
    accepted), listing every round's figure when there are several; one image per message is
    then compared with the median ceiling."""
    runs = []
    for position, first in enumerate(rounds[0]):
        if "unavailable" in first:
            runs.append(first)
            continue
        figure = "ceiling_per_s" if first["key"] == "ceiling" else "accepted_per_s"
        each = [r[position] for r in rounds]
        median = dict(sorted(each, key=lambda r: float(r[figure]))[len(each) // 2])
        if len(rounds) > 1:
            median["of_runs"] = [r[figure] for r in each]
            median["problems"] = [p for r in each for p in r["problems"]]
        runs.append(median)
    ceiling = runs[0]["ceiling_per_s"]
    for run in runs:
        if run.get("per_request") == 1 and "accepted_per_s" in run:
            # The ceiling is messages/s: comparable with one image per message only.
            run["ceiling_ratio"] = run["accepted_per_s"] / ceiling
    return runs


def _upload_round(seconds: float, features: Features, uploaders: int) -> list[Run]:
    ceiling = measure_ceiling(seconds)
    runs: list[Run] = [
        {
            "key": "ceiling",
            "run": "bare gRPC ceiling: do-nothing handler, 1 uploader process, "
            f"{ceiling['request_bytes']} B requests",
            "ceiling_per_s": ceiling["messages_per_s"],
            "problems": [ceiling["error"]] if ceiling["error"] else [],
        }
    ]
    variants = [
        ("per_message", [UploadPlan()], ()),
        ("batched", [UploadPlan(per_request=UPLOAD_BATCH)] * uploaders, ("batched_upload",)),
        (
            "batched_raw",
            [UploadPlan(per_request=UPLOAD_BATCH, raw=True)] * uploaders,
            ("batched_upload", "raw_upload"),
        ),
    ]
    for key, plans, needs in variants:
        label = (
            f"img16 {plans[0].describe()}, {len(plans)} uploader process"
            f"{'es' if len(plans) > 1 else ''}; 1 client {SNAPSHOT_1MS.describe()}"
        )
        why = missing(features, *needs)
        if why:
            runs.append({"key": key, "run": label, "unavailable": why})
            continue
        with running_node() as node:
            window = run_loads(node, [SNAPSHOT_1MS], list(plans), seconds)
        accepted = window.metrics.get("images_uploaded_total", 0.0)
        runs.append(
            {
                "key": key,
                "run": label,
                "per_request": plans[0].per_request,
                "accepted_per_s": window.per_s(accepted),
                "cpu_ms_per_1000": 1e6 * window.cpu / accepted if accepted else None,
                **_rates(window),
                **_common(window),
            }
        )
    return runs


# ---- 2, 3, 8: Hashpipe sockets ----------------------------------------------------------------


def every_frame_readers() -> list[tuple[str, ReadPlan, tuple[str, ...]]]:
    """The every-frame reader of scenarios 2 and 3 in the original's PACKED pixels and in RAW
    (what the client library asks a server on the same machine for): the daemon's cost per frame
    differs most between these two."""
    raw = ReadPlan(every_frame=True, per_response=EVERY_FRAME_BATCH, encoding=pb.PanoImage.RAW)
    return [
        ("packed", EVERY_FRAME, ("every_frame",)),
        ("raw", raw, ("every_frame", "pixel_encoding")),
    ]


def _available_forms(
    features: Features, runs: list[Run], key: str, label: Callable[[ReadPlan], str]
) -> Iterator[tuple[str, str, ReadPlan]]:
    """(key, label, reader) for each every-frame reader whose features the daemon has; the
    others go into `runs` as "not available" with the reason."""
    for form, reader, needs in every_frame_readers():
        run_key, run_label = f"{key}_{form}", label(reader)
        why = missing(features, *needs)
        if why:
            runs.append({"key": run_key, "run": run_label, "unavailable": why})
            continue
        yield run_key, run_label, reader


def hashpipe_every_frame(seconds: float, features: Features) -> list[Run]:
    """Hashpipe flat out, one every-frame client."""
    load = HashpipeLoad()
    runs: list[Run] = []

    def labels(reader: ReadPlan) -> str:
        return f"{load.describe()}; 1 client {reader.describe()}"

    for key, label, reader in _available_forms(features, runs, "every_frame_flat_out", labels):
        with running_node() as node:
            window = run_loads(node, [reader], [load], seconds)
        ((_, images, lost),) = window.streams()
        runs.append(
            {
                "key": key,
                "run": label,
                "ingested_per_s": window.per_s(window.metrics.get("frames_published_total", 0.0)),
                "delivered_per_s": window.per_s(images),
                "lost_per_s": window.per_s(lost),
                **_common(window),
            }
        )
    return runs


def flat_after_warmup(samples: list[dict[str, float]], warmup: float) -> Run:
    """RSS and descriptors from the first sample after the warm-up to the last, and growth."""
    after = [s for s in samples if s["t"] >= warmup] or samples[-1:]
    if not after:
        return {}
    first, last = after[0], after[-1]
    return {
        "rss_mib": [first["rss_bytes"] / 2**20, last["rss_bytes"] / 2**20],
        "rss_growth": growth(first["rss_bytes"], last["rss_bytes"]),
        "fds": [first["fds"], last["fds"]],
        "fd_growth": growth(first["fds"], last["fds"]),
        "warmup_s": warmup,
    }


def eight_modules_1khz(soak_minutes: float, features: Features) -> list[Run]:
    """8 modules x 1 kHz img16 + ph256 to 2 every-frame clients for the soak's length, once per
    pixel form; RSS and descriptors sampled throughout and compared from the end of the warm-up
    (the first third of the run, at most 60 s) to the end."""
    load = HashpipeLoad(rate=8 * 1000)
    seconds = soak_minutes * 60
    runs: list[Run] = []

    def labels(reader: ReadPlan) -> str:
        return f"{load.describe()}; 2 clients {reader.describe()}, {soak_minutes:g} min"

    for key, label, reader in _available_forms(features, runs, "eight_modules", labels):
        with running_node() as node:
            window = run_loads(
                node,
                [reader, reader],
                [load],
                seconds,
                drain=True,
                sample_every=max(1.0, min(15.0, seconds / 20)),
            )
        published = window.totals.get("frames_published_total", 0.0)
        final = window.streams(window.final)
        runs.append(
            {
                "key": key,
                "run": label,
                "ingested_per_s": window.per_s(window.metrics.get("frames_published_total", 0.0)),
                "delivered_per_s": [window.per_s(images) for images in _images(window)],
                "lost": sum(lost for _, _, lost in final),
                # Frames published while the clients read that neither reached them nor were
                # reported lost: must be 0 whatever the load.
                "unaccounted": sum(int(published) - images - lost for _, images, lost in final),
                **flat_after_warmup(window.samples, min(60.0, seconds / 3)),
                **_common(window),
            }
        )
    return runs


def snapshot_under_flat_out(seconds: float) -> list[Run]:
    """4 snapshot clients at 1 ms while Hashpipe producers run flat out."""
    load = HashpipeLoad()
    readers = ReadPlan(streams=4)
    with running_node() as node:
        window = run_loads(node, [readers], [load], seconds)
    return [
        {
            "key": "snapshot_flat_out",
            "run": f"{load.describe()}; 4 clients {readers.describe()}",
            "ingested_per_s": window.per_s(window.metrics.get("frames_published_total", 0.0)),
            **_rates(window),
            **_common(window),
        }
    ]


# ---- 4: fan-out ------------------------------------------------------------------------------


def fan_out(seconds: float) -> list[Run]:
    """Snapshot clients at 10 Hz: 20 on one img16 module, 100 on 4 modules x img16 + ph256 (8
    pairs), each against a run without clients at the same upload rate."""
    one_pair = UploadPlan(rate=1000)
    eight_pairs = UploadPlan(modules=FOUR_MODULES, products=("img16", "ph256"), rate=1000)
    cases = [
        (
            "fanout_20",
            one_pair,
            ReadPlan(streams=10, pulse_height=False, interval=0.1),
            2,
            "1 pair",
        ),
        ("fanout_100", eight_pairs, ReadPlan(streams=50, interval=0.1), 2, "8 pairs"),
    ]
    runs: list[Run] = []
    for key, plan, readers, processes, pairs in cases:
        source = f"1 000 images/s uploaded over {pairs} (module, product)"
        baseline: float | None = None
        for plans in ([], [readers] * processes):
            clients = sum(p.streams for p in plans)
            with running_node() as node:
                window = run_loads(node, plans, [plan], seconds)
            run: Run = {
                "key": key if clients else f"{key}_baseline",
                "run": f"{source}; {clients} clients"
                + (f" {readers.describe()}" if clients else " (baseline)"),
                "uploaded_per_s": window.per_s(window.metrics.get("images_uploaded_total", 0.0)),
                **_rates(window),
                **_common(window),
            }
            if baseline is None:
                baseline = window.cpu_percent
            else:
                run["fan_out_cpu_percent"] = window.cpu_percent - baseline
            runs.append(run)
    return runs


# ---- 5: latency ------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between closest ranks."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latencies(window: Window) -> Run:
    """Upload-to-client latency of every image a reader received, matched by (module, type,
    frame_number) with when its uploader sent it."""
    sent: dict[tuple[int, int, int], int] = {}
    for result in window.producer_results:
        for module, kind, number, ns in result["stamps"]:
            sent[(module, kind, number)] = ns
    delays: list[float] = []
    for result in window.reader_results:
        for module, kind, number, ns in result["records"]:
            stamp = sent.get((module, kind, number))
            if stamp is not None:
                delays.append((ns - stamp) / 1e6)
    if not delays:
        return {"received_fraction": 0.0}
    return {
        "p50_ms": percentile(delays, 50),
        "p99_ms": percentile(delays, 99),
        "max_ms": max(delays),
        "received_fraction": len(delays) / len(sent),
    }


def latency(seconds: float, features: Features) -> list[Run]:
    """p50/p99 upload-to-client at 500 img16/s and at 1 kHz x 4 modules x 2 products, to a
    snapshot client at 1 ms and (where the daemon has it) an every-frame client.

    At 1 kHz the uploader sends, every millisecond, one request with that millisecond's 8 images
    (4 modules x img16 + ph256), as a producer of all modules' frames would."""
    loads = [
        ("latency_500", "500 img16/s uploaded (1 module)", UploadPlan(rate=500, stamp=True), ()),
        (
            "latency_8k",
            "1 kHz x 4 modules x img16 + ph256 uploaded, one request of 8 images per ms",
            UploadPlan(
                modules=FOUR_MODULES,
                products=("img16", "ph256"),
                per_request=8,
                rate=8000,
                stamp=True,
            ),
            ("batched_upload",),
        ),
    ]
    readers = [
        ("snapshot", ReadPlan(record=True), ()),
        (
            "every_frame",
            ReadPlan(every_frame=True, per_response=EVERY_FRAME_BATCH, record=True),
            ("every_frame",),
        ),
    ]
    runs: list[Run] = []
    for load_key, source, plan, load_needs in loads:
        for reader_key, reader, reader_needs in readers:
            key = f"{load_key}_{reader_key}"
            label = f"{source}; 1 client {reader.describe()}"
            why = missing(features, *load_needs, *reader_needs)
            if why:
                runs.append({"key": key, "run": label, "unavailable": why})
                continue
            with running_node() as node:
                window = run_loads(node, [reader], [plan], seconds, drain=True)
            runs.append(
                {
                    "key": key,
                    "run": label,
                    **latencies(window),
                    "accepted_per_s": window.per_s(window.metrics.get("images_uploaded_total", 0)),
                    **_common(window),
                }
            )
    return runs
