"""Run every benchmark and print its table beside the published references.

``python -m benchmarks.run_all [--only openstef,pv,wind,speed,dispatch] [--out DIR]`` (``make
benchmarks``). Each benchmark also runs alone (``python -m benchmarks.<module>``). With
``--out`` the tables are also written as CSV. Data sets that are absent are reported and
skipped; the exit code is 1 when a benchmark fails.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import traceback
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pandas as pd

from benchmarks.adapters import SharedDataMissingError

BENCHMARKS = {
    "openstef": "benchmarks.load_openstef",
    "pv": "benchmarks.pv_gefcom2014",
    "wind": "benchmarks.wind_gefcom2012",
    "speed": "benchmarks.speed",
    "dispatch": "benchmarks.dispatch",
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(BENCHMARKS),
                        help=f"comma-separated subset of {list(BENCHMARKS)}")
    parser.add_argument("--out", type=Path, default=None, help="directory for CSV tables")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; expected some of {list(BENCHMARKS)}")
    failed = []
    for name in names:
        module = importlib.import_module(BENCHMARKS[name])
        print(f"\n######## {name} ({BENCHMARKS[name]})", flush=True)
        t0 = time.perf_counter()
        try:
            out = module.run()
        except SharedDataMissingError as err:
            print(f"skipped: {err}")
            continue
        except Exception:  # noqa: BLE001 - printed with its traceback, exit code 1
            traceback.print_exc()
            failed.append(name)
            continue
        module.report(out)
        print(f"({name}: {time.perf_counter() - t0:.0f} s)", flush=True)
        if args.out is not None:
            args.out.mkdir(parents=True, exist_ok=True)
            for key in ("table", "scores_mw"):
                if key in out:
                    value = out[key]
                    frame = value if hasattr(value, "to_csv") else pd.DataFrame([value])
                    frame.to_csv(args.out / f"{name}_{key}.csv")
    if failed:
        print(f"\nfailed: {failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
