"""``rmsprop-harness merge``: the parts of one plan, run on several machines, into one run folder."""

from __future__ import annotations

import argparse
import sys

from harness.cli._parser import PROG
from reference.errors import InputError


def add(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("merge", help="merge run folders of one plan (run --shard k/n on several machines) into one "
                                     "run folder, report and gate input",
                       epilog="example: rmsprop-harness merge cpu-part/ gpu-part/ --out reports/merged")
    p.add_argument("folders", nargs="+", metavar="DIR", help="run folders written by run --shard k/n (or whole runs)")
    p.add_argument("--out", required=True, metavar="DIR", help="the merged run folder (new, or an earlier merge)")
    p.add_argument("--no-report", action="store_true", help="do not write report.md, report.html and the CSVs")
    return p


def main(args: argparse.Namespace) -> int:
    from harness import report
    from harness.conformance.merge import merge

    result = merge(args.folders, args.out)
    summary = result.tables["summary"]
    counts = ", ".join(f"{n} {s}" for s, n in summary["status"].value_counts().items())
    units = len(result.env["plan"]["units"])
    print(f"merged {len(args.folders)} folders: {units - result.missing} of {units} tasks ({counts or 'no rows'}) "
          f"-> {args.out}/")
    if result.missing:
        print(f"{PROG}: {result.missing} tasks of the plan are in none of the folders (a part not run, or "
              "interrupted: rerun it into its folder, then merge again); the merged run is marked incomplete",
              file=sys.stderr)
    code = result.exit_code
    if not args.no_report:
        try:
            report.write_report(args.out)
            print(f"report: {args.out}/report.md, {args.out}/report.html")
        except InputError as exc:
            print(f"{PROG}: error: the report could not be written ({exc}); the tables are in {args.out}/",
                  file=sys.stderr)
            code = max(code, 2)
    return code
