"""The Low Carbon London price-response trial (2013) as a demand-response benchmark.

Run from the repository root (1,065 s measured on 2 cores shared with other jobs, load about 6;
the baselines take most of it, the 6 ML fits about 2 minutes)::

    .venv/bin/python -m benchmarks.london_dr [--placebo-days 5] [--methods auto,x_of_y]
    .venv/bin/python -m benchmarks.london_dr --from-windows var/benchmarks/london_dr/windows.csv

For every High-price and Low-price event block of the trial (``benchmarks.adapters.
lcl_dtou``) and every group (the average household of ``flex``, ``noflex``, ``all``), each
baseline is computed by ``inference.measurement.baseline_for_customer``, the function behind
``/baseline`` and ``vpp measure``, from readings before the event (before the day-ahead
notice for day-of adjustments). The measured response is the reduction ``baseline - actual``
in kWh per household over the block, and in % of the baseline energy; a Low-price block
should show a negative reduction (consumption moved into it).

**Confidence interval from placebo windows.** For each block the same clock window on the
latest ``placebo_days`` normal days of its pool before it (``inference.measurement.
placebo_windows``, the windows ``auto`` scores on) is measured the same way. Nobody was
asked to respond there, so a placebo "reduction" is the baseline's error. The mean
reduction over the blocks of one type has the error distribution of the mean of one
placebo error per block: drawn ``n_boot`` times (one placebo window per block, uniformly),
its 2.5 % and 97.5 % quantiles ``q`` give the 95 % interval ``[R - q97.5, R - q2.5]``. A
baseline that is biased on normal days shifts that interval away from ``R``: the table
shows ``R`` as measured and, beside it, ``corrected_pct`` = ``R`` minus the placebo bias
(the centre of the interval). The flex-minus-noflex
difference draws the *same* placebo window for both groups (their errors are correlated).
The placebo CV(RMSE) of each baseline is ``sqrt(mean (b-a)^2) / mean a`` over all placebo
intervals of the group and event type.

The ML baseline (``MLBaseline``, pooled over the three groups, product defaults) is refitted
every ``refit_days`` on readings before each refit date; a window on local day ``D`` uses the
latest fit trained before ``D - 21 days`` (the convention of ``measure_event``'s ``auto``,
which leaves out-of-sample placebo days for the choice). The trial data start on
1 January 2013, so windows before about 22 February have no ML baseline (and ``auto`` there
chooses among the rules): the counts per method are printed.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.adapters import lcl_dtou
from forecasting.errors import DataError
from inference.baseline_data import EvalDataset
from inference.measurement import baseline_for_customer, placebo_windows
from models.baselines.ml import MLBaseline

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "var" / "benchmarks" / "london_dr"
METHODS = ("similar_days", "x_of_y", "pre_event", "ml", "auto")
AUTO_TRAIN_GAP = pd.Timedelta(days=21)
HOURS_PER_INTERVAL = 0.5
# auto scores windows up to AUTO_LOOKBACK_DAYS (60) before the event with rules that look
# back 45 days (lookback_days): older readings cannot change any baseline here
HISTORY_DAYS = pd.Timedelta(days=110)

os.environ.setdefault("OMP_NUM_THREADS", "1")


def fit_ml_models(data: EvalDataset, refit_days: int = 60, ml_params: dict | None = None
                  ) -> list[MLBaseline]:
    """Pooled ML baselines trained before every ``refit_days``-th local midnight."""
    first = min(s.index[0] for s in data.loads.values()).tz_convert(data.timezone).normalize()
    last = max(s.index[-1] for s in data.loads.values())
    models = []
    train_end = first + pd.Timedelta(days=refit_days)
    while train_end < last:
        models.append(MLBaseline(**(ml_params or {})).fit(
            data.loads, timezone=data.timezone, holiday_country=data.holiday_country,
            event_days=data.event_days, weather=data.weather or None,
            train_end=train_end.tz_convert("UTC")))
        train_end += pd.Timedelta(days=refit_days)
    return models


def ml_for(models: list[MLBaseline], start: pd.Timestamp, timezone: str) -> MLBaseline | None:
    """The latest fit trained before the window's local day minus 21 days."""
    cutoff = start.tz_convert(timezone).normalize() - AUTO_TRAIN_GAP
    usable = [m for m in models if m.train_end_ <= cutoff]
    return usable[-1] if usable else None


class WindowScorer:
    """Baseline and metered energy of one window and method, through the product function
    (cached: the placebo windows of neighbouring blocks coincide)."""

    def __init__(self, data: EvalDataset, models: list[MLBaseline]):
        self.data, self.models, self.cache = data, models, {}

    def __call__(self, cid: str, start, end, notice, method: str) -> dict | None:
        key = (cid, start, end, notice, method)
        if key not in self.cache:
            self.cache[key] = self._score(*key)
        return self.cache[key]

    def _score(self, cid, start, end, notice, method):
        data = self.data
        model = ml_for(self.models, start, data.timezone)
        if method == "ml" and model is None:
            return None
        load = data.loads[cid]
        # the readings a baseline (and auto's choice) can reach, no more: the same result,
        # and the day matrices stay small (see HISTORY_DAYS)
        load = load[(load.index >= start - HISTORY_DAYS) & (load.index < end)]
        try:
            details, _ = baseline_for_customer(
                load, timezone=data.timezone, holiday_country=data.holiday_country,
                event_days=data.event_days[cid], start=start, end=end, notice_time=notice,
                method=method, customer_id=cid, ml_model=model)
        except DataError:
            return None
        frame = details.frame
        actual = data.loads[cid].reindex(frame.index)
        if actual.isna().any():
            return None
        b, a = frame["baseline_kw"].to_numpy(), actual.to_numpy()
        return {"chosen": details.method,
                "baseline_kwh": float(b.sum() * HOURS_PER_INTERVAL),
                "actual_kwh": float(a.sum() * HOURS_PER_INTERVAL),
                "sse_kw2": float(((b - a) ** 2).sum()), "n": len(a)}


def measure(data: EvalDataset, blocks: pd.DataFrame, methods=METHODS, placebo_days: int = 5,
            refit_days: int = 60, progress=None) -> tuple[pd.DataFrame, dict]:
    """Rows (group, block, kind ``event``/``placebo``, window, method, energies, errors)."""
    seconds = {}
    t0 = time.perf_counter()
    models = fit_ml_models(data, refit_days) if {"ml", "auto"} & set(methods) else []
    seconds["ml_fits"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    score = WindowScorer(data, models)
    rows = []
    for i, b in enumerate(blocks.itertuples()):
        for cid in data.loads:
            windows = [("event", b.start, b.end, b.notice_time)]
            windows += [("placebo", *w) for w in placebo_windows(
                data.loads[cid], data.timezone, data.holiday_country,
                frozenset(data.event_days[cid]), b.start, b.end, b.notice_time,
                n_days=placebo_days)]
            for k, (kind, s, e, n) in enumerate(windows):
                for m in methods:
                    r = score(cid, s, e, n, m)
                    if r is not None:
                        rows.append({"customer_id": cid, "block": i,
                                     "price_signal": b.price_signal, "kind": kind,
                                     "window": k, "method": m, **r})
        if progress:
            progress(i + 1, len(blocks))
    seconds["baselines"] = time.perf_counter() - t0
    seconds["n_ml_fits"] = len(models)
    seconds["n_baseline_calls"] = len(score.cache)
    return pd.DataFrame(rows), seconds


def _draws(placebo: pd.DataFrame, blocks: list, n_boot: int, rng) -> np.ndarray:
    """Index draws: one placebo window per block (columns), ``n_boot`` rows; -1 if none."""
    counts = placebo.groupby("block")["window"].nunique().reindex(blocks).fillna(0).to_numpy()
    u = rng.random((n_boot, len(blocks)))
    return np.where(counts > 0, np.floor(u * np.maximum(counts, 1)), -1).astype(int)


def summarise(rows: pd.DataFrame, n_boot: int = 4000, seed: int = 0) -> pd.DataFrame:
    """Per group, price signal and method: mean reduction (kWh, %), its placebo 95 % CI,
    the placebo bias and the placebo CV(RMSE) (see the module doc)."""
    out = []
    rows = rows.assign(reduction_kwh=rows["baseline_kwh"] - rows["actual_kwh"])
    for (cid, signal, method), g in rows.groupby(["customer_id", "price_signal", "method"]):
        ev = g[g["kind"] == "event"].set_index("block")
        pl = g[g["kind"] == "placebo"]
        blocks = [b for b in ev.index if b in set(pl["block"])]
        if not blocks:
            continue
        ev = ev.loc[blocks]
        rng = np.random.default_rng(seed)
        pick = _draws(pl, blocks, n_boot, rng)
        err = _placebo_matrix(pl, blocks)  # blocks x windows, NaN padded
        mean_err = np.nanmean(np.take_along_axis(err[None, :, :].repeat(n_boot, 0),
                                                 pick[:, :, None], axis=2)[..., 0], axis=1)
        r = float(ev["reduction_kwh"].mean())
        base = float(ev["baseline_kwh"].mean())
        lo, hi = r - np.quantile(mean_err, 0.975), r - np.quantile(mean_err, 0.025)
        out.append({"group": cid.removeprefix("lcl_"), "signal": signal, "method": method,
                    "n_blocks": len(blocks), "n_placebo": len(pl),
                    "reduction_kwh": r, "ci_lo_kwh": lo, "ci_hi_kwh": hi,
                    "reduction_pct": 100 * r / base, "ci_lo_pct": 100 * lo / base,
                    "ci_hi_pct": 100 * hi / base,
                    "placebo_bias_kwh": float(mean_err.mean()),
                    "corrected_pct": 100 * (r - float(mean_err.mean())) / base,
                    "placebo_cvrmse": float(np.sqrt(pl["sse_kw2"].sum() / pl["n"].sum())
                                            / (pl["actual_kwh"].sum() / HOURS_PER_INTERVAL
                                               / pl["n"].sum()))})
    return pd.DataFrame(out).set_index(["group", "signal", "method"])


def _placebo_matrix(pl: pd.DataFrame, blocks: list) -> np.ndarray:
    """Placebo reduction (kWh) per block (rows, in ``blocks`` order) and window (columns)."""
    pl = pl.assign(reduction_kwh=pl["baseline_kwh"] - pl["actual_kwh"])
    width = int(pl.groupby("block").size().max())
    mat = np.full((len(blocks), width), np.nan)
    for r, b in enumerate(blocks):
        v = pl.loc[pl["block"] == b, "reduction_kwh"].to_numpy()
        mat[r, :len(v)] = v
    return mat


def flex_vs_noflex(rows: pd.DataFrame, method: str, signal: str = "High",
                   n_boot: int = 4000, seed: int = 0) -> dict:
    """Reduction of flex minus noflex, in % of each group's baseline, with a placebo CI that
    draws the same placebo window for both groups."""
    sel = rows[(rows["method"] == method) & (rows["price_signal"] == signal)]
    groups = {g: sel[sel["customer_id"] == lcl_dtou.customer_id(g)] for g in ("flex", "noflex")}
    keys = {g: set(zip(f["block"], f["window"], strict=True)) for g, f in groups.items()}
    common = keys["flex"] & keys["noflex"]
    ev_blocks = sorted(b for b, w in common if w == 0
                       and any(bb == b and ww > 0 for bb, ww in common))
    if not ev_blocks:
        return {}
    pct, err, placebo = {}, {}, {}
    for g, f in groups.items():
        f = f[[(b, w) in common for b, w in zip(f["block"], f["window"], strict=True)]]
        f = f.assign(red=f["baseline_kwh"] - f["actual_kwh"])
        ev = f[(f["kind"] == "event") & f["block"].isin(ev_blocks)].set_index("block")
        base = ev["baseline_kwh"].mean()
        pct[g] = 100 * ev.loc[ev_blocks, "red"].mean() / base
        placebo[g] = f[(f["kind"] == "placebo") & f["block"].isin(ev_blocks)].drop(
            columns="red")
        err[g] = 100 * _placebo_matrix(placebo[g], ev_blocks) / base
    rng = np.random.default_rng(seed)
    pick = _draws(placebo["flex"], ev_blocks, n_boot, rng)  # the same windows for noflex
    diff_err = err["flex"] - err["noflex"]
    draws = np.nanmean(np.take_along_axis(diff_err[None].repeat(n_boot, 0), pick[:, :, None],
                                          axis=2)[..., 0], axis=1)
    d = pct["flex"] - pct["noflex"]
    return {"method": method, "n_blocks": len(ev_blocks), "flex_pct": pct["flex"],
            "noflex_pct": pct["noflex"], "diff_pp": d,
            "ci_lo_pp": d - np.quantile(draws, 0.975), "ci_hi_pp": d - np.quantile(draws, 0.025)}


def verdict(table: pd.DataFrame, diff: dict, method: str) -> str:
    """Is the flex group's High-price reduction positive and larger than noflex's?"""
    f = table.loc[("flex", "High", method)]
    n = table.loc[("noflex", "High", method)]
    positive = f["ci_lo_kwh"] > 0
    larger = diff and diff["ci_lo_pp"] > 0
    lines = [(f"[{method}] flex High-price reduction {f['reduction_kwh']:+.4f} kWh per "
              f"household per block ({f['reduction_pct']:+.1f} %, 95 % placebo CI "
              f"{f['ci_lo_pct']:+.1f} .. {f['ci_hi_pct']:+.1f} %): "
              f"{'POSITIVE' if positive else 'NOT shown positive'} "
              f"(CI {'above' if positive else 'not above'} 0)"),
             (f"[{method}] noflex High-price reduction {n['reduction_pct']:+.1f} % (CI "
              f"{n['ci_lo_pct']:+.1f} .. {n['ci_hi_pct']:+.1f} %)")]
    if diff:
        lines.append(f"[{method}] flex minus noflex {diff['diff_pp']:+.1f} pp (95 % placebo CI "
                     f"{diff['ci_lo_pp']:+.1f} .. {diff['ci_hi_pp']:+.1f} pp, "
                     f"{diff['n_blocks']} blocks): flex reduction "
                     f"{'LARGER than' if larger else 'NOT shown larger than'} noflex's")
    ok = positive and larger
    claim = ("positive and larger than the noflex group's" if ok
             else "NOT shown both positive and larger than the noflex group's")
    lines.append(f"[{method}] => the flex group's High-price reduction is {claim}")
    return "\n".join(lines)


def report(rows: pd.DataFrame, placebo_days: int,
           verdict_methods=("auto", "x_of_y", "similar_days", "ml")) -> tuple:
    """Print the table and the flex-vs-noflex verdicts of measured ``rows``."""
    table = summarise(rows)
    OUT.mkdir(parents=True, exist_ok=True)
    table.to_csv(OUT / "summary.csv")
    print("\n== London dToU: mean reduction per block (baseline - actual, kWh per household "
          "and % of baseline; Low-price: negative = consumption moved in), 95 % CI from "
          f"placebo windows (same hours, {placebo_days} latest normal days; centred on "
          "corrected_pct = reduction minus the placebo bias), placebo CV(RMSE)")
    with pd.option_context("display.width", 250, "display.max_columns", 20):
        print(table.round(4).to_string())
    print("\n== flex vs noflex, High-price blocks")
    diffs = {}
    methods = set(rows["method"])
    for m in verdict_methods:
        if m in methods:
            diffs[m] = flex_vs_noflex(rows, m)
            print(verdict(table, diffs[m], m))
    return table, diffs


def run(methods=METHODS, placebo_days: int = 5, refit_days: int = 60, root=None) -> dict:
    t0 = time.perf_counter()
    data, blocks = lcl_dtou.load_dataset(root)
    counts = blocks["price_signal"].value_counts().to_dict()
    print(f"LCL dToU 2013: {counts.get('High', 0)} High-price and {counts.get('Low', 0)} "
          f"Low-price blocks, groups {', '.join(data.loads)} (average household, kW); "
          f"bank holidays missing from the GB calendar, excluded from pools: "
          f"{', '.join(str(d) for d in sorted(lcl_dtou.uncovered_bank_holidays(root)))}")
    rows, seconds = measure(data, blocks, methods, placebo_days, refit_days)
    OUT.mkdir(parents=True, exist_ok=True)
    rows.to_csv(OUT / "windows.csv", index=False)
    table, diffs = report(rows, placebo_days)
    total = time.perf_counter() - t0
    print(f"\n{seconds['n_ml_fits']} ML fits {seconds['ml_fits']:.0f} s; "
          f"{seconds['n_baseline_calls']} baseline calls {seconds['baselines']:.0f} s; total "
          f"{total:.0f} s; CSVs in {OUT}")
    return {"table": table, "diffs": diffs, "rows": rows, "seconds": total}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--placebo-days", type=int, default=5)
    parser.add_argument("--refit-days", type=int, default=60)
    parser.add_argument("--from-windows", type=Path, default=None, help="re-print the tables "
                        "from a windows.csv of an earlier run (no baseline is recomputed)")
    args = parser.parse_args(argv)
    if args.from_windows:
        report(pd.read_csv(args.from_windows), args.placebo_days)
        return
    run(tuple(args.methods.split(",")), args.placebo_days, args.refit_days)


if __name__ == "__main__":
    main()
