"""`panoseti-daqdata`: the DaqData daemon (not yet available)."""

from __future__ import annotations

import sys


def main() -> int:
    print("panoseti-daqdata: not yet available in this version", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
