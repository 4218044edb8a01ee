"""What the command-line tools print at the end of a mask run (cli, bench, demo).

Apart from `cli` so that `bench` and `demo`, which `cli` runs, need not import `cli` back.
"""

import sys

from .masks.pipeline import warning_summary


def report_warnings(command: str, warnings: list[str]) -> None:
    """Each warning of the run on stderr, then the summary line (also when there are none)."""
    for warning in warnings:
        print(f"insertanywhere {command}: warning: {warning}", file=sys.stderr)
    print(f"insertanywhere {command}: {warning_summary(warnings)}", file=sys.stderr, flush=True)
