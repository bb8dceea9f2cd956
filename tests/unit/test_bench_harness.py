"""`make bench`'s harness without running anything: its tables, the docs section, its options and
the arithmetic of its figures (bench/report.py, bench/options.py, bench/scenarios.py)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.measure import Window
from bench.options import parse_only, parser
from bench.report import BEGIN, END, SCENARIOS, render, update_docs
from bench.scenarios import flat_after_warmup, latencies, median_round, percentile


def results() -> dict[str, Any]:
    """A small run: scenario 1 measured (one run unavailable), 3 measured, 5 partly, 6 one run."""
    return {
        "date": "2026-12-03 10:00 UTC",
        "machine": {
            "cpu": "Test CPU",
            "cores": 2,
            "os": "Debian GNU/Linux 12 (bookworm)",
            "kernel": "6.1.0",
            "python": "3.11.2",
            "grpcio": "1.85.3",
            "protobuf": "7.36.2",
        },
        "git": "abc1234",
        "commands": ["make bench", "# runs: .venv/bin/python bench/run_all.py"],
        "load_average": {"start": [0.5, 0.4, 0.3], "end": [1.5, 1.0, 0.5]},
        "duration_s": 240,
        "features": {
            "every_frame": {"available": True, "why": "ok"},
            "raw_upload": {"available": False, "why": "a RAW upload is refused"},
        },
        "scenarios": {
            "1": {
                "title": "UploadImages flat out",
                "runs": [
                    {"key": "ceiling", "run": "bare handler", "ceiling_per_s": 15000.0},
                    {
                        "key": "per_message",
                        "run": "one per message",
                        "accepted_per_s": 12800.0,
                        "cpu_ms_per_1000": 62.5,
                        "ceiling_ratio": 12800 / 15000,
                        "of_runs": [12800.0, 11950.0, 13020.0],
                        "client_per_s": [950.0],
                        "cpu_percent": 80.0,
                        "problems": [],
                    },
                    {
                        "key": "batched_raw",
                        "run": "batched RAW",
                        "unavailable": "raw_upload: a RAW upload is refused",
                    },
                ],
            },
            "3": {
                "title": "8 modules x 1 kHz",
                "runs": [
                    {
                        "key": "eight_modules_packed",
                        "run": "8 modules",
                        "ingested_per_s": 16000.0,
                        "delivered_per_s": [16000.0, 15990.0],
                        "lost": 0,
                        "unaccounted": 0,
                        "rss_mib": [80.0, 80.5],
                        "rss_growth": 0.00625,
                        "fds": [22.0, 22.0],
                        "fd_growth": 0.0,
                        "cpu_percent": 60.0,
                        "problems": ["stream ended: UNAVAILABLE: shutting down"],
                    }
                ],
            },
            "5": {
                "title": "Latency",
                "runs": [
                    {
                        "key": "latency_500_snapshot",
                        "run": "500 img16/s",
                        "p50_ms": 0.92,
                        "p99_ms": 1.5,
                        "max_ms": 3.0,
                        "received_fraction": 0.99,
                    }
                ],
            },
            "6": {
                "title": "Decode",
                "runs": [
                    {"key": "img16_RAW", "run": "img16 RAW", "pixels_us": 2.1, "parse_us": 25.0}
                ],
            },
        },
    }


def rows(markdown: str, first_cell: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith(f"| {first_cell}")]


def test_render_writes_machine_commands_and_one_table_per_scenario():
    markdown = render(results())
    assert markdown.startswith("Measured 2026-12-03 10:00 UTC on Test CPU, 2 cores, Debian")
    assert "grpcio 1.85.3" in markdown
    assert "checkout abc1234" in markdown
    assert "load average 0.5 at the start, 1.5 at the end; 240 s in all" in markdown
    assert "```sh\nmake bench\n# runs: .venv/bin/python bench/run_all.py\n```" in markdown
    assert "Daemon features found: every_frame yes, raw_upload no." in markdown
    for heading in ("**(1) UploadImages flat out**", "**(3) 8 modules x 1 kHz**"):
        assert heading in markdown
    assert "**(2)" not in markdown


#: The first cell of each run row of `results()` and what the row must hold.
FIGURE_ROWS = {
    "bare handler": ["| bare handler | 15 000 messages/s |"],
    "one per message": [
        "accepted 12 800 images/s; 85 % of the ceiling; median of 3 runs: 12 800, 11 950, 13 020",
        "daemon CPU 62.5 ms per 1 000 images",
        "per client 950 images/s",
    ],
    "batched RAW": ["| batched RAW | not available: raw_upload: a RAW upload is refused |"],
    "8 modules |": [
        "delivered 16 000, 15 990 frames/s; lost 0; unaccounted 0",
        "RSS 80.0 → 80.5 MiB (+0.6 %); fds 22 → 22 (+0.0 %)",
        "**problems**: stream ended: UNAVAILABLE: shutting down",
    ],
    "img16 RAW": ["pixels 2.1 µs; whole image 25.0 µs"],
}


@pytest.mark.parametrize("first_cell", FIGURE_ROWS)
def test_render_figures_of_each_run(first_cell: str) -> None:
    (row,) = rows(render(results()), first_cell)
    for part in FIGURE_ROWS[first_cell]:
        assert part in row


#: The start of each target row of `results()` and how it must end.
TARGET_ROWS = {
    "(1) upload, one image per message: ≥ 1.4": "| 12 800/s | met |",
    "(1) upload, one image per message: ≥ 85 %": "| 85 % | met |",
    "(1) batched uploads (RAW)": "| – | not available: raw_upload: a RAW upload is refused |",
    "(3) 8 modules × 1 kHz, 2 every-frame clients, PACKED": "| 0 lost or unaccounted | met |",
    "(3) RSS and descriptors flat, PACKED": "| +0.6 % at most | met |",
    "(3) 8 modules × 1 kHz, 2 every-frame clients, RAW": "| – | not available: no such run |",
    "(5) latency at 500 img/s, snapshot client: p50": "| 0.92 ms | **not met** |",
    "(5) latency at 500 img/s, snapshot client: p99": "| 1.50 ms | met |",
    "(5) latency at 500 img/s, every-frame client: p50": "| – | not available: no such run |",
    "(4) fan-out, 20 clients": "| – | not measured in this run |",
}


@pytest.mark.parametrize("start", TARGET_ROWS)
def test_render_targets_met_not_met_unavailable_and_not_measured(start: str) -> None:
    (row,) = rows(render(results()), start)
    assert row.endswith(TARGET_ROWS[start])


def test_render_compares_with_the_original():
    markdown = render(results())
    (accepted,) = rows(markdown, "UploadImages, img16 accepted")
    assert accepted == "| UploadImages, img16 accepted | 9 091/s | 12 800/s | 1.41× |"
    (cpu,) = rows(markdown, "daemon CPU per 1 000 img16 uploaded")
    assert cpu == "| daemon CPU per 1 000 img16 uploaded | 125.00 ms | 62.50 ms | 0.50× |"
    (p50,) = rows(markdown, "latency at 500 img/s, p50")
    assert p50 == "| latency at 500 img/s, p50 | 1.84 ms | 0.92 ms | 0.50× |"
    (fan_out,) = rows(markdown, "daemon CPU, 20 clients")
    assert "| not measured in this run | – |" in fan_out


def test_update_docs_replaces_only_between_the_markers(tmp_path):
    docs = tmp_path / "performance.md"
    docs.write_text(
        f"# Performance\n\nProse before.\n\n{BEGIN}\nold table\n{END}\n\nProse after.\n"
    )
    update_docs(docs, "new table\n")
    text = docs.read_text()
    assert text == f"# Performance\n\nProse before.\n\n{BEGIN}\nnew table\n{END}\n\nProse after.\n"
    update_docs(docs, "newer table")
    assert docs.read_text() == text.replace("new table", "newer table")


def test_update_docs_appends_the_section_once(tmp_path):
    docs = tmp_path / "performance.md"
    docs.write_text("# Performance\n\nProse.\n")
    update_docs(docs, "first")
    update_docs(docs, "second")
    text = docs.read_text()
    assert text.startswith("# Performance\n\nProse.\n\n## Every scenario at once: `make bench`\n")
    assert (text.count(BEGIN), text.count(END)) == (1, 1)
    assert text.endswith(f"{BEGIN}\nsecond\n{END}\n")


@pytest.mark.parametrize(
    ("text", "wanted"),
    [("1,4", ("1", "4")), ("4,1", ("1", "4")), (" 8 , 3,3", ("3", "8")), ("7", ("7",))],
)
def test_only_names_scenarios_in_their_order(text, wanted):
    assert parse_only(text) == wanted
    assert parser().parse_args(["--only", text]).only == wanted


@pytest.mark.parametrize("text", ["9", "1,x", "", " , "])
def test_only_refuses_unknown_or_no_scenarios(text):
    with pytest.raises(argparse.ArgumentTypeError):
        parse_only(text)


def test_options_default_to_every_scenario_and_short_runs():
    args = parser().parse_args([])
    assert args.only == SCENARIOS == ("1", "2", "3", "4", "5", "6", "7", "8")
    assert (args.seconds, args.soak_minutes, args.no_docs, args.repeat) == (5.0, 1.0, False, 1)


def test_options_refuse_a_bad_value(capsys):
    with pytest.raises(SystemExit):
        parser().parse_args(["--only", "0"])
    assert "unknown scenario 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser().parse_args(["--seconds", "0"])
    with pytest.raises(SystemExit):
        parser().parse_args(["--repeat", "0"])
    assert "must be 1 or more, not 0" in capsys.readouterr().err


def _round(ceiling: float, accepted: float, batched: float) -> list[dict[str, Any]]:
    return [
        {"key": "ceiling", "ceiling_per_s": ceiling, "problems": []},
        {"key": "per_message", "per_request": 1, "accepted_per_s": accepted, "problems": []},
        {"key": "batched", "per_request": 64, "accepted_per_s": batched, "problems": ["x"]},
        {"key": "batched_raw", "unavailable": "raw_upload: refused"},
    ]


def test_scenario_1_reports_each_run_by_its_median_round():
    ceiling, per_message, batched, raw = median_round(
        [
            _round(20_000, 9_000, 50_000),
            _round(16_000, 12_000, 40_000),
            _round(18_000, 8_000, 60_000),
        ]
    )
    assert (ceiling["ceiling_per_s"], ceiling["of_runs"]) == (18_000, [20_000, 16_000, 18_000])
    assert (per_message["accepted_per_s"], per_message["of_runs"]) == (
        9_000,
        [9_000, 12_000, 8_000],
    )
    assert per_message["ceiling_ratio"] == 9_000 / 18_000
    assert batched["accepted_per_s"] == 50_000
    assert "ceiling_ratio" not in batched  # messages/s compare with one image per message only
    assert batched["problems"] == ["x", "x", "x"]
    assert raw == {"key": "batched_raw", "unavailable": "raw_upload: refused"}


def test_scenario_1_with_one_round_lists_no_runs():
    _, per_message, _, _ = median_round([_round(20_000, 9_000, 50_000)])
    assert "of_runs" not in per_message
    assert per_message["ceiling_ratio"] == 0.45


def test_percentile_interpolates_between_ranks():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile([3.0], 99) == 3.0


def window(producers: list[Any], readers: list[Any]) -> Window:
    return Window(
        seconds=1.0,
        cpu=0.5,
        metrics={},
        totals={},
        counts=[],
        final=[],
        plans=[],
        reader_results=readers,
        producer_results=producers,
    )


def test_latencies_match_images_by_module_type_and_frame_number():
    sent = {"stamps": [(1, 2, 0, 1_000_000), (1, 2, 1, 3_000_000), (2, 1, 0, 5_000_000)]}
    received = {
        "records": [
            (1, 2, 0, 1_500_000),  # 0.5 ms
            (2, 1, 0, 7_000_000),  # 2 ms (same frame number, other module and type)
            (9, 2, 0, 1_000_000),  # never sent: ignored
        ]
    }
    figures = latencies(window([sent], [received]))
    assert figures["p50_ms"] == pytest.approx(1.25)
    assert figures["max_ms"] == pytest.approx(2.0)
    assert figures["received_fraction"] == pytest.approx(2 / 3)


def test_latencies_without_any_image_received():
    assert latencies(window([{"stamps": [(1, 2, 0, 1)]}], [{"records": []}])) == {
        "received_fraction": 0.0
    }


def test_flat_after_warmup_compares_the_first_sample_after_warmup_with_the_last():
    samples = [
        {"t": 5.0, "rss_bytes": 50 * 2**20, "fds": 20.0},
        {"t": 20.0, "rss_bytes": 80 * 2**20, "fds": 22.0},
        {"t": 40.0, "rss_bytes": 84 * 2**20, "fds": 22.0},
    ]
    flat = flat_after_warmup(samples, warmup=10.0)
    assert flat["rss_mib"] == [80.0, 84.0]
    assert flat["rss_growth"] == pytest.approx(0.05)
    assert (flat["fds"], flat["fd_growth"]) == ([22.0, 22.0], 0.0)


@pytest.mark.parametrize(
    ("on_path", "reader"), [(True, "threaded_read_loop"), (False, "_read_loop")]
)
def test_the_threaded_ingest_experiment_replaces_the_reader_only_when_on_the_path(
    on_path: bool, reader: str
) -> None:
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if on_path:
        env["PYTHONPATH"] = str(root / "bench" / "experiments" / "threaded_ingest")
    code = (
        "from panoseti_appliance.daqdata.server.sources import hashpipe as hp\n"
        "print(hp.HashpipeListener._read_loop.__name__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == reader
