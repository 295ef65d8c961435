"""`python -m bench [--quick] [--out docs/PERFORMANCE.md] [--json docs/performance.json]`.

Runs the whole benchmark of issue 6 once (see `bench.harness`), writes the raw figures as JSON and
the report as Markdown, and prints the targets met and missed. `--quick` runs a small release with
few users for a few seconds each: it proves the harness works, in well under two minutes.

`python -m bench read-path [ARGS]` runs the read path alone, in-process (`bench.bench_read`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from bench import bench_read
from bench.harness import Config, run, stop_on_sigterm
from bench.report import render


def main(argv: list[str] | None = None) -> int:
    """Run, write, summarise; exit status 0 even when targets are missed (they are reported)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["read-path"]:
        asyncio.run(bench_read.main(argv[1:]))
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small and short: under 2 minutes")
    parser.add_argument("--out", type=Path, default=Path("docs/PERFORMANCE.md"))
    parser.add_argument("--json", type=Path, default=Path("docs/performance.json"))
    parser.add_argument("--no-browser", action="store_true", help="skip the Chromium figures")
    parser.add_argument("--workdir", type=Path, help="keep logs and profiles here")
    args = parser.parse_args(argv)
    stop_on_sigterm()
    config = Config.quick_mode() if args.quick else Config.full()
    if args.no_browser:
        config = config.without_browser()
    results = asyncio.run(run(config, workdir=args.workdir))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(results, json_path=args.json))
    for target in results["targets"]:
        verdict = {True: "met", False: "MISSED", None: "not measured"}[target["met"]]
        print(f"{verdict:>12}  {target['target']}: {target['measured']}")
    print(f"wrote {args.out} and {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
