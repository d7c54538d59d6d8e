"""OpenSTEF 307, rolling origin: every day of the last 8 weeks, ours beside OpenSTEF 3.4.93.

Protocol (issue 12): the last ``--weeks`` whole local weeks (Monday-Sunday, Europe/Amsterdam)
of the data, one forecast a day issued 12:00 local the day before (12-36 h ahead), quantiles
P05..P95. Retrained weekly on all data measured before the week's first issue (the Sunday
12:00 before it: a model never sees data after an issue it serves):

- ours through the product path (``benchmarks.product_path.run_product``: ``train_site`` with
  ``--train-end`` = that issue, the registry's champion, ``forecast_site``), one run per seed
  (``--seeds``, ``vpp train --seed``);
- OpenSTEF 3.4.93's xgb pipeline in its own venv (``benchmarks.openstef_reference``) on the
  same data cut, one run per seed of its (otherwise unseeded) validation-day draw
  (``--openstef-seeds``, default the same seeds).

Both sides are scored on exactly the same (issue, timestamp) rows: a row is dropped only when
either side (any seed) lacks it or the load was not measured, and the count is printed.
Scores in MW. Target (printed, not asserted): MAE of ours, mean over seeds, at most 0.85 x
OpenSTEF's; P10-P90 coverage 0.78-0.82.

``python -m benchmarks.load_openstef_rolling [--seeds 0,1,2,3,4] [--weeks 8]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks import openstef_reference as ref
from benchmarks import print_table
from benchmarks.adapters import openstef as ost
from benchmarks.product_path import portfolio_dir, run_product, served_by_older_champion
from forecasting.metrics import forecast_scores
from pipelines.config import TrainingConfig
from pipelines.evaluation import Schedule

QUANTILES = (0.05, 0.1, 0.3, 0.5, 0.7, 0.9, 0.95)
ISSUE_HOUR_LOCAL = 12
WEEKS = 8
SEEDS = (0, 1, 2, 3, 4)
TARGET_RATIO = 0.85
TARGET_COVERAGE = (0.78, 0.82)
KEY = ["issue_time", "timestamp"]


def local_midnight(day, timezone: str = ost.TIMEZONE) -> pd.Timestamp:
    return pd.Timestamp(pd.Timestamp(day).date()).tz_localize(timezone)


def window(raw: pd.DataFrame, weeks: int = WEEKS) -> tuple[pd.Timestamp, pd.Timestamp]:
    """[first Monday, last Monday) local: the last ``weeks`` whole local weeks with load."""
    last = raw["load"].dropna().index.max().tz_convert(ost.TIMEZONE)
    end = local_midnight(last + pd.Timedelta(minutes=15))  # the day the data stop in is cut
    end = local_midnight(end.date() - dt.timedelta(days=end.weekday()))
    return local_midnight(end.date() - dt.timedelta(weeks=weeks)), end


def wall_clock_schedule(first: pd.Timestamp, end: pd.Timestamp) -> Schedule:
    """One issue at 12:00 local on D-1 for every local day D in [first, end), by the wall
    clock: the 23- and 25-hour days keep their issue at 12:00 and all their quarter hours.

    (``pipelines.evaluation.day_ahead_schedule`` adds absolute hours to the local midnight,
    so around 25 October 2020 it issues at 11:00 and ends that day at 23:00.)
    """
    days = pd.date_range(first.date(), end.date(), freq="D", inclusive="left")
    at = [local_midnight(d) for d in days] + [local_midnight(end)]
    issues = [local_midnight(d - dt.timedelta(days=1)).replace(hour=ISSUE_HOUR_LOCAL)
              for d in days]
    return Schedule([t.tz_convert("UTC") for t in issues],
                    [t.tz_convert("UTC") for t in at[:-1]], [t.tz_convert("UTC") for t in at[1:]])


def plan(raw: pd.DataFrame, weeks: int = WEEKS) -> tuple[Schedule, list[pd.Timestamp]]:
    """The daily schedule and one training end per week (the week's first issue)."""
    schedule = wall_clock_schedule(*window(raw, weeks))
    train_ends = [schedule.issues[i] for i in range(0, len(schedule.issues), 7)]
    return schedule, train_ends


def week_of(timestamps: pd.Series, first: pd.Timestamp) -> np.ndarray:
    """Week number (0 = the first) of each timestamp's local day."""
    days = pd.DatetimeIndex(timestamps).tz_convert(ost.TIMEZONE).normalize().tz_localize(None)
    return np.asarray((days - first.tz_localize(None)).days // 7)


def ours_mw(forecasts: pd.DataFrame) -> pd.DataFrame:
    """The product's output format (kW) as ``issue_time, timestamp, qX`` in MW."""
    qcols = [f"q{q:g}" for q in QUANTILES]
    frame = forecasts[KEY + qcols].copy()
    frame[qcols] = frame[qcols] / 1000.0
    return frame


def common_rows(runs: dict[tuple[str, int], pd.DataFrame], actual: pd.Series
                ) -> tuple[pd.MultiIndex, dict]:
    """(issue, timestamp) rows with a measured load that every run has; what was dropped.

    Rows without a reading are counted first (nobody can score them); of the measured rows,
    those that any run lacks are dropped and counted per run.
    """
    keys = {name: pd.MultiIndex.from_frame(f[KEY]) for name, f in runs.items()}
    union = pd.MultiIndex.from_tuples(sorted(set().union(*keys.values())), names=KEY)
    measured = union[actual.reindex(union.get_level_values("timestamp")).notna().to_numpy()]
    common = measured
    lacking = {}
    for name, idx in keys.items():
        lacking[name] = int((~measured.isin(idx)).sum())
        common = common[common.isin(idx)]
    return common, {"union": len(union), "lacking_per_run": lacking,
                    "dropped_either_side": len(measured) - len(common),
                    "dropped_unmeasured": len(union) - len(measured)}


def scores_by_week(run: pd.DataFrame, rows: pd.MultiIndex, actual: pd.Series,
                   first: pd.Timestamp) -> pd.DataFrame:
    """Scores (MW) of one run on ``rows``, per week and overall (index ``all``)."""
    frame = run.set_index(KEY).loc[rows].reset_index()
    y = actual.reindex(pd.DatetimeIndex(frame["timestamp"])).to_numpy(float)
    qs = {q: frame[f"q{q:g}"].to_numpy(float) for q in QUANTILES}
    week = week_of(frame["timestamp"], first)
    out = {int(w): forecast_scores(y[week == w], {q: v[week == w] for q, v in qs.items()})
           for w in np.unique(week)}
    out["all"] = forecast_scores(y, qs)
    return pd.DataFrame(out).T


def run(seeds=SEEDS, openstef_seeds=None, weeks: int = WEEKS, root=None) -> dict:
    from forecasting.portfolio import read_portfolio

    openstef_seeds = seeds if openstef_seeds is None else openstef_seeds
    python = ref.openstef_python()
    if python is None:
        raise SystemExit("OpenSTEF venv not available: see the message above")
    raw = ost.read_raw(root)
    schedule, train_ends = plan(raw, weeks)
    first = window(raw, weeks)[0]
    jobs = ref.jobs_for(schedule, train_ends, openstef_seeds, ost.TIMEZONE)
    t0 = time.perf_counter()
    runs, product = {}, {}
    with tempfile.TemporaryDirectory(prefix="openstef-") as tmp:
        proc = ref.start(raw, jobs, QUANTILES, python, Path(tmp))  # runs beside ours
        with portfolio_dir(ost.frames(root)) as directory:
            portfolio = read_portfolio(directory)
            for seed in seeds:
                t1 = time.perf_counter()
                out = run_product(portfolio, ost.SITE_ID, schedule, train_ends,
                                  TrainingConfig(random_state=seed), QUANTILES)
                product[seed] = out
                runs[("ours", seed)] = ours_mw(out.forecasts)
                print(f"ours seed {seed}: {len(train_ends)} trainings, "
                      f"{time.perf_counter() - t1:.0f} s", flush=True)
        ours_s = time.perf_counter() - t0
        reference, fits = ref.collect(proc, Path(tmp))
    openstef_s = time.perf_counter() - t0
    for seed, frame in reference.groupby("seed"):
        runs[("openstef", int(seed))] = frame[KEY + [f"q{q:g}" for q in QUANTILES]]
    actual = raw["load"]
    rows, dropped = common_rows(runs, actual)
    scores = {name: scores_by_week(frame, rows, actual, first) for name, frame in runs.items()}
    return {"scores": scores, "rows": rows, "dropped": dropped, "fits": fits,
            "product": product, "first": first, "train_ends": train_ends,
            "seconds": {"ours_wall": ours_s, "openstef_wall": openstef_s}}


def side(scores: dict, name: str, metric: str) -> pd.DataFrame:
    """Per week (and ``all``) x seed table of one metric for one side."""
    return pd.DataFrame({seed: s[metric] for (n, seed), s in scores.items() if n == name})


def report(out: dict) -> dict:
    scores, first = out["scores"], out["first"]
    ours_mae, ost_mae = side(scores, "ours", "mae"), side(scores, "openstef", "mae")
    ours_cov = side(scores, "ours", "coverage_p10_p90")
    ost_cov = side(scores, "openstef", "coverage_p10_p90")
    n = next(iter(scores.values()))["n"]
    weeks = [w for w in ours_mae.index if w != "all"]
    label = {w: str((first + pd.DateOffset(weeks=int(w))).date()) for w in weeks}
    label["all"] = "all"
    table = pd.DataFrame({
        "week_from": [label[w] for w in ours_mae.index], "n": n.astype(int).to_numpy(),
        "ours_mae_mean": ours_mae.mean(axis=1), "ours_mae_sd": ours_mae.std(axis=1, ddof=1),
        f"openstef_{ref.VERSION}_mae": ost_mae.mean(axis=1),
        "openstef_sd": ost_mae.std(axis=1, ddof=1),
        "ratio": ours_mae.mean(axis=1) / ost_mae.mean(axis=1),
        "ours_cov": ours_cov.mean(axis=1), "openstef_cov": ost_cov.mean(axis=1)},
        index=ours_mae.index)
    ours_seeds = sorted(s for (k, s) in scores if k == "ours")
    ost_seeds = sorted(s for (k, s) in scores if k == "openstef")
    print_table(table.set_index("week_from"),
                f"OpenSTEF 307 rolling: {len(weeks)} weeks, day-ahead issued 12:00 "
                f"Europe/Amsterdam, weekly retrain; MAE in MW, mean (sd) over seeds "
                f"{','.join(map(str, ours_seeds))} (OpenSTEF seeds "
                f"{','.join(map(str, ost_seeds))}); ratio = ours / OpenSTEF", "{:.3f}")
    overall = {}
    for name in ("ours", "openstef"):
        per_seed = pd.DataFrame({seed: s.loc["all"] for (k, seed), s in scores.items()
                                 if k == name}).T
        overall[name] = per_seed
        print_table(per_seed[["mae", "rmse", "mean_pinball", "crps", "coverage_p10_p90"]],
                    f"{name}: overall per seed (MW)", "{:.3f}")
        m = per_seed["mae"]
        print(f"{name}: MAE mean {m.mean():.3f}, sd {m.std(ddof=1):.3f}, range "
              f"{m.min():.3f}-{m.max():.3f} MW; P10-P90 coverage mean "
              f"{per_seed['coverage_p10_p90'].mean():.3f}")
    d = out["dropped"]
    print(f"scored rows: {len(out['rows'])} (issue, timestamp) pairs common to every run of "
          f"both sides, of {d['union']} forecast: {d['dropped_unmeasured']} without a reading, "
          f"then {d['dropped_either_side']} measured ones that a side lacked (per run: "
          f"{d['lacking_per_run']})")
    older = sum(int(served_by_older_champion(p).sum()) for p in out["product"].values())
    fallback = sum(int(p.forecasts["model_version"].str.startswith("fallback").sum())
                   for p in out["product"].values())
    stayed = sum(int((p.trainings["alias"] != "champion").sum())
                 for p in out["product"].values())
    failed = out["fits"][out["fits"]["error"] != ""]
    print(f"ours: {stayed} of {sum(len(p.trainings) for p in out['product'].values())} "
          f"retrains stayed challenger ({older} forecast rows served by an older champion), "
          f"{fallback} rows from the fallback; OpenSTEF: {len(out['fits'])} fits, "
          f"{len(failed)} failed, {out['fits']['seconds'].mean():.1f} s per fit")
    ratio = overall["ours"]["mae"].mean() / overall["openstef"]["mae"].mean()
    cov = overall["ours"]["coverage_p10_p90"].mean()
    lo, hi = TARGET_COVERAGE
    print(f"target MAE <= {TARGET_RATIO} x OpenSTEF {ref.VERSION} (mean over seeds): ratio "
          f"{ratio:.3f}: {'MET' if ratio <= TARGET_RATIO else 'NOT MET'}; P10-P90 coverage in "
          f"[{lo}, {hi}]: {cov:.3f}: {'MET' if lo <= cov <= hi else 'NOT MET'}")
    s = out["seconds"]
    print(f"wall time: ours {s['ours_wall']:.0f} s, both done {s['openstef_wall']:.0f} s "
          "(OpenSTEF ran beside ours)")
    return {"table": table, "overall": overall, "ratio": ratio, "coverage": cov}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default=",".join(map(str, SEEDS)),
                        help="our training seeds (vpp train --seed)")
    parser.add_argument("--openstef-seeds", default=None,
                        help="seeds of OpenSTEF's validation-day draw (default: --seeds)")
    parser.add_argument("--weeks", type=int, default=WEEKS)
    args = parser.parse_args()
    seeds = tuple(int(s) for s in args.seeds.split(","))
    ost_seeds = (None if args.openstef_seeds is None
                 else tuple(int(s) for s in args.openstef_seeds.split(",")))
    report(run(seeds, ost_seeds, args.weeks))


if __name__ == "__main__":
    main()
