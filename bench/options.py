"""The command line of `bench/run_all.py` (`make bench BENCH_ARGS=...`)."""

from __future__ import annotations

import argparse

from bench.report import SCENARIOS, TITLES


def parse_only(text: str) -> tuple[str, ...]:
    """The scenarios named by "1,4" (here ("1", "4")), in their own order, each once."""
    wanted = {part.strip() for part in text.split(",") if part.strip()}
    unknown = sorted(wanted - set(SCENARIOS))
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown scenario {', '.join(unknown)}; choose from {','.join(SCENARIOS)}"
        )
    if not wanted:
        raise argparse.ArgumentTypeError("name at least one scenario, e.g. --only 1,4")
    return tuple(s for s in SCENARIOS if s in wanted)


def positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, not {text}")
    return value


def at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {text}")
    return value


def parser() -> argparse.ArgumentParser:
    legend = "; ".join(f"{n} {title}" for n, title in TITLES.items())
    p = argparse.ArgumentParser(
        prog="bench/run_all.py",
        description="Run the DaqData performance scenarios against the real daemon; write the "
        "results as JSON and the tables into docs/performance.md.",
        epilog=f"Scenarios: {legend}.",
    )
    p.add_argument(
        "--only",
        type=parse_only,
        default=SCENARIOS,
        metavar="N[,N...]",
        help="scenarios to run (default: all)",
    )
    p.add_argument(
        "--seconds", type=positive, default=5.0, help="measured seconds of each run (default 5)"
    )
    p.add_argument(
        "--soak-minutes",
        type=positive,
        default=1.0,
        help="length of scenario 3, with RSS and descriptors watched (default 1; 10 for the "
        "documented figure)",
    )
    p.add_argument(
        "--uploaders",
        type=int,
        default=2,
        help="uploader processes of the batched upload runs (default 2)",
    )
    p.add_argument(
        "--repeat",
        type=at_least_one,
        default=1,
        help="rounds of scenario 1, each with its own ceiling; the median round is reported "
        "with every round's figure (default 1; 3 for the documented figure)",
    )
    p.add_argument("--output", help="where the JSON results go (default bench/results/<date>.json)")
    p.add_argument(
        "--docs",
        default="docs/performance.md",
        help="markdown file whose bench markers get the tables (default docs/performance.md)",
    )
    p.add_argument("--no-docs", action="store_true", help="write the JSON only")
    return p
