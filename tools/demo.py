"""`make demo`: the appliance's main job on its embedded default data (placeholder until DaqData lands)."""

from __future__ import annotations

import argparse
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.parse_args()
    print("demo: not yet available", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
