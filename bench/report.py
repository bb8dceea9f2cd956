"""The results of `make bench` as markdown: figures, targets met or not, the original's figures.

Pure functions of the results dict (the JSON `run_all.py` writes), so the tables can be rendered
again from a saved file and are tested without running anything. Targets are reported here,
never asserted: a target not met is a line in the table, not a failure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Run = Mapping[str, Any]
Results = Mapping[str, Any]

BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"

TITLES = {
    "1": "UploadImages flat out, one snapshot client at 1 ms",
    "2": "Hashpipe sockets flat out, one every-frame client",
    "3": "8 modules x 1 kHz img16 + ph256, 2 every-frame clients (also the soak)",
    "4": "Snapshot fan-out at 10 Hz",
    "5": "Latency, upload to client",
    "6": "Client decode per image, per pixel encoding (this thread's CPU)",
    "7": "Bytes on the wire per frame, per pixel encoding (bundled sample run: real ph256 of "
    "module 254, generated img16 movie)",
    "8": "4 snapshot clients at 1 ms while Hashpipe producers run flat out",
}
SCENARIOS = tuple(TITLES)


def number(value: float, digits: int = 0) -> str:
    """A figure as the docs write it: thousands separated by a space."""
    return f"{value:,.{digits}f}".replace(",", " ")


def percent(fraction: float, digits: int = 0) -> str:
    return f"{number(100 * fraction, digits)} %"


def _many(values: Sequence[float], unit: str) -> str:
    if len(values) <= 4:
        return ", ".join(number(v) for v in values) + unit
    ordered = sorted(values)
    return f"median {number(ordered[len(ordered) // 2])}{unit} (min {number(ordered[0])})"


def _growth(run: Run, key: str, growth: str, unit: str, digits: int) -> str:
    first, last = run[key]
    return f"{number(first, digits)} → {number(last, digits)}{unit} ({100 * run[growth]:+.1f} %)"


#: How each figure of a run is written, in the order they appear.
FIGURES: list[tuple[str, Callable[[Any, Run], str]]] = [
    ("ceiling_per_s", lambda v, r: f"{number(v)} messages/s"),
    ("accepted_per_s", lambda v, r: f"accepted {number(v)} images/s"),
    ("ceiling_ratio", lambda v, r: f"{percent(v)} of the ceiling"),
    ("of_runs", lambda v, r: f"median of {len(v)} runs: {', '.join(number(x) for x in v)}"),
    ("cpu_ms_per_1000", lambda v, r: f"daemon CPU {number(v, 1)} ms per 1 000 images"),
    ("uploaded_per_s", lambda v, r: f"uploaded {number(v)} images/s"),
    ("ingested_per_s", lambda v, r: f"published {number(v)} frames/s"),
    (
        "delivered_per_s",
        lambda v, r: f"delivered {_many(v if isinstance(v, list) else [v], ' frames/s')}",
    ),
    ("lost_per_s", lambda v, r: f"lost {number(v)}/s"),
    ("lost", lambda v, r: f"lost {number(v)}"),
    ("unaccounted", lambda v, r: f"unaccounted {number(v)}"),
    ("client_per_s", lambda v, r: f"per client {_many(v, ' images/s')}"),
    ("p50_ms", lambda v, r: f"p50 {number(v, 2)} ms"),
    ("p99_ms", lambda v, r: f"p99 {number(v, 2)} ms"),
    ("max_ms", lambda v, r: f"max {number(v, 1)} ms"),
    ("received_fraction", lambda v, r: f"{percent(v, 1)} of images received"),
    ("pixels_us", lambda v, r: f"pixels {number(v, 1)} µs"),
    ("parse_us", lambda v, r: f"whole image {number(v, 1)} µs"),
    (
        "pixel_bytes",
        lambda v, r: (
            f"pixels {number(v)} B ({v / r['raw_bytes']:.2f} × {number(r['raw_bytes'])} raw)"
        ),
    ),
    ("response_bytes", lambda v, r: f"response {number(v)} B"),
    ("rss_mib", lambda v, r: f"RSS {_growth(r, 'rss_mib', 'rss_growth', ' MiB', 1)}"),
    ("fds", lambda v, r: f"fds {_growth(r, 'fds', 'fd_growth', '', 0)}"),
    ("cpu_percent", lambda v, r: f"daemon CPU {number(v)} % of a core"),
    ("fan_out_cpu_percent", lambda v, r: f"{v:+.0f} % over the baseline"),
]


def figures(run: Run) -> str:
    """One run's figures as one line."""
    if "error" in run:
        return f"failed: {run['error']}"
    if "unavailable" in run:
        return f"not available: {run['unavailable']}"
    parts = [show(run[key], run) for key, show in FIGURES if run.get(key) is not None]
    problems = run.get("problems") or []
    if problems:
        parts.append(f"**problems**: {'; '.join(problems[:2])}")
    return "; ".join(parts)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def scenario_tables(results: Results) -> list[str]:
    """One small table per scenario measured, under its number and title."""
    lines: list[str] = []
    for scenario_id, scenario in sorted(results["scenarios"].items()):
        title = scenario.get("title") or TITLES.get(scenario_id, "")
        lines += [f"**({scenario_id}) {title}**", "", "| run | figures |", "|---|---|"]
        for run in scenario["runs"]:
            lines.append(f"| {_cell(run['run'])} | {_cell(figures(run))} |")
        lines.append("")
    return lines


# ---- targets -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A goal of the issue: `value` reads it from the scenario's run with `key`."""

    text: str
    scenario: str
    key: str
    value: Callable[[Run], float | None]
    show: Callable[[float], str]
    met: Callable[[float], bool]


def _min(field: str) -> Callable[[Run], float | None]:
    def read(run: Run) -> float | None:
        value = run.get(field)
        if isinstance(value, list):
            return min(value) if value else None
        return value if value is None else float(value)

    return read


def _field(field: str) -> Callable[[Run], float | None]:
    return lambda run: run.get(field)


ORIGINAL_UPLOAD = 9091.0
#: The pixel forms scenarios 2 and 3 run in (their runs' key suffix, as the targets name them).
FORMS = (("packed", "PACKED"), ("raw", "RAW"))


def _per_s(v: float) -> str:
    return f"{number(v)}/s"


def _pct(v: float) -> str:
    return f"{number(v)} % of a core"


def _ms(v: float) -> str:
    return f"{number(v, 2)} ms"


def _below(limit: float) -> Callable[[float], bool]:
    return lambda v: v < limit


def _lost(run: Run) -> float | None:
    if run.get("lost") is None:
        return None
    return float(run["lost"]) + max(0.0, float(run.get("unaccounted", 0)))


def _growth_max(run: Run) -> float | None:
    if run.get("rss_growth") is None:
        return None
    return max(float(run["rss_growth"]), float(run["fd_growth"]))


TARGETS: list[Target] = [
    Target(
        f"(1) upload, one image per message: ≥ 1.4 × {number(ORIGINAL_UPLOAD)} = "
        f"{number(1.4 * ORIGINAL_UPLOAD)} img16/s",
        "1",
        "per_message",
        _field("accepted_per_s"),
        _per_s,
        lambda v: v >= 1.4 * ORIGINAL_UPLOAD,
    ),
    Target(
        "(1) upload, one image per message: ≥ 85 % of the bare gRPC ceiling",
        "1",
        "per_message",
        _field("ceiling_ratio"),
        percent,
        lambda v: v >= 0.85,
    ),
    Target(
        "(1) batched uploads (PACKED): ≥ 50 000 img16/s",
        "1",
        "batched",
        _field("accepted_per_s"),
        _per_s,
        lambda v: v >= 50_000,
    ),
    Target(
        "(1) batched uploads (RAW): ≥ 50 000 img16/s",
        "1",
        "batched_raw",
        _field("accepted_per_s"),
        _per_s,
        lambda v: v >= 50_000,
    ),
    *(
        Target(
            f"(2) every-frame from Hashpipe, {form}: ≥ 20 000 frames/s to one client",
            "2",
            f"every_frame_flat_out_{key}",
            _field("delivered_per_s"),
            _per_s,
            lambda v: v >= 20_000,
        )
        for key, form in FORMS
    ),
    *(
        Target(
            f"(3) 8 modules × 1 kHz, 2 every-frame clients, {form}: 0 lost",
            "3",
            f"eight_modules_{key}",
            _lost,
            lambda v: f"{number(v)} lost or unaccounted",
            lambda v: v == 0,
        )
        for key, form in FORMS
    ),
    *(
        Target(
            f"(3) RSS and descriptors flat, {form}: < 5 % growth after warm-up",
            "3",
            f"eight_modules_{key}",
            _growth_max,
            lambda v: f"{100 * v:+.1f} % at most",
            lambda v: v < 0.05,
        )
        for key, form in FORMS
    ),
    Target(
        "(4) fan-out, 20 clients at 10 Hz: < 16 % of a core",
        "4",
        "fanout_20",
        _field("cpu_percent"),
        _pct,
        lambda v: v < 16,
    ),
    Target(
        "(4) fan-out, 100 clients × 8 pairs at 10 Hz: < 50 % of a core",
        "4",
        "fanout_100",
        _field("cpu_percent"),
        _pct,
        lambda v: v < 50,
    ),
    *(
        Target(
            f"(5) latency at 500 img/s, {client} client: {stat} < {limit:g} ms",
            "5",
            f"latency_500_{key}",
            _field(f"{stat}_ms"),
            _ms,
            _below(limit),
        )
        for key, client in (("snapshot", "snapshot"), ("every_frame", "every-frame"))
        for stat, limit in (("p50", 0.5), ("p99", 2.0))
    ),
    *(
        Target(
            f"(5) latency at 1 kHz × 4 × 2, {client} client: p99 < 5 ms",
            "5",
            f"latency_8k_{key}",
            _field("p99_ms"),
            _ms,
            lambda v: v < 5,
        )
        for key, client in (("snapshot", "snapshot"), ("every_frame", "every-frame"))
    ),
    Target(
        "(6) RAW decode (img16 pixels): < 10 µs per image",
        "6",
        "img16_RAW",
        _field("pixels_us"),
        lambda v: f"{number(v, 1)} µs",
        lambda v: v < 10,
    ),
    Target(
        "(8) snapshot clients at 1 ms under flat-out producers: ≥ 900 images/s each",
        "8",
        "snapshot_flat_out",
        _min("client_per_s"),
        lambda v: f"{number(v)}/s (slowest)",
        lambda v: v >= 900,
    ),
]


def find_run(results: Results, scenario: str, key: str) -> Run | None:
    for run in results["scenarios"].get(scenario, {}).get("runs", []):
        if run.get("key") == key:
            return dict(run)
    return None


def assess(target: Target, results: Results) -> tuple[str, str]:
    """(measured, verdict) of one target in these results."""
    if target.scenario not in results["scenarios"]:
        return "–", "not measured in this run"
    run = find_run(results, target.scenario, target.key)
    if run is None:
        return "–", "not available: no such run"
    if "error" in run:
        return "–", f"not available: the run failed: {run['error']}"
    if "unavailable" in run:
        return "–", f"not available: {run['unavailable']}"
    value = target.value(run)
    if value is None:
        return "–", "not available: no figure"
    return target.show(value), "met" if target.met(value) else "**not met**"


def targets_table(results: Results) -> list[str]:
    lines = ["| target | measured | |", "|---|---|---|"]
    for target in TARGETS:
        measured, verdict = assess(target, results)
        lines.append(f"| {_cell(target.text)} | {_cell(measured)} | {_cell(verdict)} |")
    return lines


# ---- the original server -----------------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    """A figure of the original server, from the issue (a 2-core machine)."""

    text: str
    original: float
    unit: str
    scenario: str
    key: str
    field: str


REFERENCES = [
    Reference(
        "UploadImages, img16 accepted", ORIGINAL_UPLOAD, "/s", "1", "per_message", "accepted_per_s"
    ),
    Reference(
        "daemon CPU per 1 000 img16 uploaded", 125.0, " ms", "1", "per_message", "cpu_ms_per_1000"
    ),
    Reference(
        "daemon CPU, 20 clients at 0.1 s with 1 000 img16/s uploaded",
        32.0,
        " % of a core",
        "4",
        "fanout_20",
        "cpu_percent",
    ),
    Reference("latency at 500 img/s, p50", 1.84, " ms", "5", "latency_500_snapshot", "p50_ms"),
    Reference("latency at 500 img/s, p99", 2.72, " ms", "5", "latency_500_snapshot", "p99_ms"),
]


def _reference_value(value: float, unit: str) -> str:
    return f"{number(value, 2 if unit == ' ms' else 0)}{unit}"


def reference_table(results: Results) -> list[str]:
    lines = ["| measurement | original | this run | this run / original |", "|---|---|---|---|"]
    for ref in REFERENCES:
        run = find_run(results, ref.scenario, ref.key)
        value = None if run is None else run.get(ref.field)
        ours, ratio = "–", "–"
        if value is not None:
            ours = _reference_value(float(value), ref.unit)
            ratio = f"{float(value) / ref.original:.2f}×"
        elif ref.scenario not in results["scenarios"]:
            ours = "not measured in this run"
        elif run is not None and "unavailable" in run:
            ours = f"not available: {run['unavailable']}"
        lines.append(
            f"| {ref.text} | {_reference_value(ref.original, ref.unit)} | {_cell(ours)} | {ratio} |"
        )
    return lines


# ---- the whole section ---------------------------------------------------------------------


def machine_line(results: Results) -> str:
    m = results["machine"]
    load = results.get("load_average", {})
    return (
        f"Measured {results['date']} on {m['cpu']}, {m['cores']} cores, {m['os']}, kernel "
        f"{m['kernel']}, Python {m['python']}, grpcio {m['grpcio']}, protobuf {m['protobuf']}; "
        f"checkout {results['git']}; load average {load.get('start', ['?'])[0]} at the start, "
        f"{load.get('end', ['?'])[0]} at the end; {number(results.get('duration_s', 0))} s in all."
    )


def render(results: Results) -> str:
    """The markdown of one run: machine, commands, figures, targets, the original's figures."""
    features = ", ".join(
        f"{name} {'yes' if f['available'] else 'no'}"
        for name, f in sorted(results.get("features", {}).items())
    )
    parts = [
        machine_line(results),
        "",
        "```sh",
        *results["commands"],
        "```",
        "",
        f"Daemon features found: {features or 'not probed'}.",
        "",
        *scenario_tables(results),
        "Targets (reported, never asserted):",
        "",
        *targets_table(results),
        "",
        "Against the original server (the issue's figures, measured on a 2-core machine; "
        "for CPU and latency lower is better):",
        "",
        *reference_table(results),
    ]
    return "\n".join(parts) + "\n"


SECTION = """## Every scenario at once: `make bench`

`make bench` (`bench/run_all.py`) starts the real daemon for each run and measures the
scenarios of the every-frame and pixel-encoding work: uploads flat out against the bare gRPC
ceiling, Hashpipe ingest to every-frame clients, 8 modules at 1 kHz (also the memory soak),
snapshot fan-out, latency, decoding and wire size per pixel encoding, and snapshot clients while
producers run flat out. It writes `bench/results/<date>.json` and replaces the section between
the two markers below; `--only 1,4`, `--seconds N` and `--soak-minutes M` choose what and how
long (`make bench BENCH_ARGS='--seconds 10 --soak-minutes 10'` for the documented figures).

"""


def update_docs(path: Path, markdown: str) -> None:
    """Put `markdown` between the markers of `path`; append the section when they are absent."""
    text = path.read_text() if path.exists() else ""
    block = f"{BEGIN}\n{markdown.rstrip()}\n{END}"
    start, end = text.find(BEGIN), text.find(END)
    if start >= 0 and end > start:
        text = text[:start] + block + text[end + len(END) :]
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + SECTION + block + "\n"
    path.write_text(text)
