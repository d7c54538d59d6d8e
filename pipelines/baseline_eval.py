"""Placebo evaluation of customer baselines, and savings recovery where the truth is known.

*Placebo events* are invented event windows on days without a real event, drawn like real
peak events (2-4 h starting in the afternoon/evening peak, a notice 1-4 h ahead): nobody
responded, so the metered load *is* the counterfactual and a baseline's error there is its
error in settlement. Each baseline is computed only from data available before the event
(and before the notice for day-of adjustments): the rule baselines enforce that themselves,
the ML baseline is refitted every ``refit_days`` on data before the block of events it then
serves (and its recent-level features are masked at each event start).

Scores per method (all intervals of all placebo events, ``b`` baseline, ``a`` metered kW):

- ``cvrmse``: the mean over customers of ``sqrt(mean (b-a)^2) / mean a`` (ASHRAE
  Guideline 14's CV(RMSE), per customer so that large customers do not dominate);
  ``cvrmse_pooled`` the same over all intervals at once;
- ``nmbe``: ``sum (b-a) / sum a`` over everything (the settlement bias);
- injected reduction: a known reduction ``r`` (``injected_reduction_ratio`` of the metered
  load) is subtracted from the metered load in the window; the estimated reduction is
  ``sum (b - a (1 - r))``, its error relative to the injected ``sum r a`` is reported as
  ``reduction_wape`` (sum over events of the absolute error / sum of the injected
  reductions) and ``reduction_bias`` (signed, same normalisation).

``savings_recovery`` fits the weather-driven ML baseline (no recent-level features) on a
baseline period and measures the saving over a later reporting period, as CalTRACK-style
M&V does; eemeter's Illinois samples carry a known 10 % saving to recover.

``evaluate_core`` is pure (frames in, frames out); ``inference.baseline_data.
dataset_from_portfolio`` reads a portfolio's customers, events and weather into an
``EvalDataset``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from forecasting.errors import DataError, InsufficientDataError
from inference.baseline_data import EvalDataset, dataset_from_portfolio  # noqa: F401
from models.baselines import RULE_METHODS, check_load
from models.baselines.common import pool_of_day
from models.baselines.ml import MLBaseline
from pipelines.baseline_auto import AUTO, COMBINED, add_auto

log = logging.getLogger(__name__)

# ML variants: the same fitted model predicts with and without the day-of adjustment.
ML_VARIANTS = {"ml": None, "ml_adjusted": "multiplicative"}
ALL_METHODS = (*RULE_METHODS, *ML_VARIANTS)
# chosen per placebo window from the single methods' scores on earlier windows
# (pipelines.baseline_auto); requested by name, computed from the single methods of the run
AUTO_METHODS = (AUTO, COMBINED)
MIN_TRAINING_DAYS = 28


class PlaceboConfig(BaseModel):
    """How placebo events are drawn and baselines refitted."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_events_per_customer: int = Field(20, gt=0, description="placebo events per customer")
    eval_days: int = Field(120, gt=0, description="placebo events fall in the last "
                           "eval_days days of the data")
    start_hour_min_local: float = Field(13.0, ge=0, lt=24, description="earliest start, local")
    start_hour_max_local: float = Field(19.0, ge=0, lt=24, description="latest start, local")
    duration_hours_min: float = Field(2.0, gt=0, description="shortest window (hours)")
    duration_hours_max: float = Field(4.0, gt=0, description="longest window (hours)")
    notice_minutes_min: int = Field(60, ge=0, description="shortest notice before the start")
    notice_minutes_max: int = Field(240, ge=0, description="longest notice before the start")
    working_days_only: bool = Field(True, description="draw placebo days among working days")
    injected_reduction_ratio: float = Field(0.15, gt=0, lt=1, description="known reduction "
                                            "injected into the metered load, share of it")
    refit_days: int = Field(30, gt=0, description="the ML baseline is refitted every "
                            "refit_days on data before the block")
    ml_params: dict = Field(default_factory=dict, description="MLBaseline parameters")
    seed: int = 0


@dataclass
class EvalResult:
    dataset: str
    events: pd.DataFrame      # one row per placebo event (customer, start, end, notice)
    intervals: pd.DataFrame   # one row per event, method and interval
    summary: pd.DataFrame     # one row per method
    failures: pd.DataFrame    # (customer, start, method, reason) where a baseline had no data
    seconds: dict[str, float]
    choices: pd.DataFrame | None = None  # auto's pick per event_no (pipelines.baseline_auto)


def draw_placebo_events(data: EvalDataset, config: PlaceboConfig) -> pd.DataFrame:
    """Placebo windows per customer (columns customer_id, start, end, notice_time; UTC)."""
    rng = np.random.default_rng(config.seed)
    rows = []
    for cid, load in sorted(data.loads.items()):
        load, res = check_load(load, f"load of {cid}")
        res_min = int(res / pd.Timedelta(minutes=1))
        local_end = load.index[-1].tz_convert(data.timezone).normalize()
        first_day = (local_end - pd.Timedelta(days=config.eval_days)).date()
        days = pd.date_range(first_day, local_end.date(), freq="D", inclusive="left")
        events = data.event_days.get(cid, frozenset())
        eligible = [d.date() for d in days if d.date() not in events and (
            not config.working_days_only
            or pool_of_day(d.date(), data.holiday_country) == "working")]
        if not eligible:
            continue
        picks = rng.choice(len(eligible), size=min(config.n_events_per_customer, len(eligible)),
                           replace=False)
        step = max(res_min, 15)
        for k in sorted(picks):
            day = eligible[k]
            starts = np.arange(config.start_hour_min_local * 60,
                               config.start_hour_max_local * 60 + 1, step)
            durations = np.arange(config.duration_hours_min * 60,
                                  config.duration_hours_max * 60 + 1, step)
            start_min = float(rng.choice(starts))
            dur_min = float(rng.choice(durations))
            notice_min = float(rng.integers(config.notice_minutes_min // 15,
                                            config.notice_minutes_max // 15 + 1) * 15)
            start = (pd.Timestamp(day, tz=data.timezone)
                     + pd.Timedelta(minutes=start_min)).tz_convert("UTC")
            end = start + pd.Timedelta(minutes=dur_min)
            window = load[(load.index >= start) & (load.index < end)]
            if len(window) < round(dur_min / res_min):
                continue  # incomplete readings: not a usable placebo window
            rows.append({"customer_id": cid, "start": start, "end": end,
                         "notice_time": start - pd.Timedelta(minutes=notice_min)})
    frame = pd.DataFrame(rows, columns=["customer_id", "start", "end", "notice_time"])
    return frame.sort_values(["start", "customer_id"], ignore_index=True)


def interval_rows(cid, event_no, method, frame: pd.DataFrame, actual: pd.Series) -> dict:
    """Columns of ``EvalResult.intervals`` for one baseline ``frame`` (``baseline_kw`` ...)."""
    a = actual.reindex(frame.index).to_numpy(dtype=float)
    out = {"customer_id": cid, "event_no": event_no, "method": method,
           "timestamp": frame.index, "actual_kw": a,
           "baseline_kw": frame["baseline_kw"].to_numpy(dtype=float)}
    for col in ("baseline_p10_kw", "baseline_p90_kw"):
        out[col] = frame[col].to_numpy(dtype=float) if col in frame else np.full(len(a), np.nan)
    return out


def evaluate_core(data: EvalDataset, config: PlaceboConfig | None = None,
                  methods: tuple[str, ...] = ALL_METHODS,
                  progress: Callable[[str, int, int], None] | None = None) -> EvalResult:
    """Placebo evaluation of ``methods`` on ``data`` (see the module doc).

    ``auto`` / ``auto_weighted`` in ``methods`` add the automatic choice among the single
    methods of the run, made for each window from earlier windows only
    (``pipelines.baseline_auto``); ``EvalResult.choices`` then says what was chosen.
    """
    config = config or PlaceboConfig()
    unknown = [m for m in methods if m not in (*ALL_METHODS, *AUTO_METHODS)]
    if unknown:
        raise ValueError(f"unknown methods {unknown}, expected some of "
                         f"{[*ALL_METHODS, *AUTO_METHODS]}")
    wanted_auto = [m for m in methods if m in AUTO_METHODS]
    methods = tuple(m for m in methods if m in ALL_METHODS)
    if wanted_auto and len(methods) < 2:
        raise ValueError(f"{wanted_auto} choose among single methods: give at least two of "
                         f"{list(ALL_METHODS)}")
    events = draw_placebo_events(data, config)
    if events.empty:
        raise InsufficientDataError(
            f"{data.name}: no placebo window could be drawn (no eligible day with complete "
            f"readings in the last {config.eval_days} days)")
    checked = {c: check_load(s, f"load of {c}") for c, s in data.loads.items()}
    loads = {c: v[0] for c, v in checked.items()}
    seconds: dict[str, float] = {}
    parts: list[dict] = []
    failures: list[dict] = []
    total = len(events)

    rule_methods = [m for m in methods if m in RULE_METHODS]
    t0 = time.perf_counter()
    fitted = {}
    for cid in events["customer_id"].unique():
        for m in rule_methods:
            fitted[cid, m] = RULE_METHODS[m]().fit(
                loads[cid], timezone=data.timezone, holiday_country=data.holiday_country,
                event_days=data.event_days.get(cid, ()), customer_id=cid)
    for i, ev in enumerate(events.itertuples()):
        actual = loads[ev.customer_id]
        for m in rule_methods:
            try:
                frame = fitted[ev.customer_id, m].predict(ev.start, ev.end, ev.notice_time)
            except DataError as err:  # no pool, no reading, ratio undefined
                failures.append({"customer_id": ev.customer_id, "start": ev.start,
                                 "method": m, "reason": str(err)})
                continue
            parts.append(interval_rows(ev.customer_id, i, m, frame, actual))
        if progress:
            progress("rules", i + 1, total)
    seconds["rules"] = time.perf_counter() - t0

    ml_methods = [m for m in methods if m in ML_VARIANTS]
    if ml_methods:
        t0 = time.perf_counter()
        first = events["start"].min()
        block = pd.Timedelta(days=config.refit_days)
        n_blocks = int(np.ceil((events["start"].max() - first) / block + 1e-9)) or 1
        done = 0
        for b in range(n_blocks + 1):
            lo, hi = first + b * block, first + (b + 1) * block
            sel = events[(events["start"] >= lo) & (events["start"] < hi)]
            if sel.empty:
                continue
            train_end = lo.tz_convert(data.timezone).normalize().tz_convert("UTC")
            # customers with at least MIN_TRAINING_DAYS of readings before the block
            usable = {c: s for c, s in loads.items()
                      if (s.index < train_end).sum() * checked[c][1]
                      >= pd.Timedelta(days=MIN_TRAINING_DAYS)}
            model = None
            if usable:
                model = MLBaseline(**config.ml_params).fit(
                    usable, timezone=data.timezone, holiday_country=data.holiday_country,
                    event_days={c: data.event_days.get(c, ()) for c in usable},
                    weather={c: data.weather[c] for c in usable if c in data.weather} or None,
                    train_end=train_end)
            for ev in sel.itertuples():
                if model is None or ev.customer_id not in usable:
                    for m in ml_methods:
                        failures.append({"customer_id": ev.customer_id, "start": ev.start,
                                         "method": m, "reason": f"less than {MIN_TRAINING_DAYS}"
                                         f" days of readings before {train_end}"})
                    continue
                for m in ml_methods:
                    model.set_params(adjustment=ML_VARIANTS[m])
                    try:
                        frame = model.predict(ev.start, ev.end, ev.notice_time,
                                              customer_id=ev.customer_id)
                    except DataError as err:  # no pool, no reading, ratio undefined
                        failures.append({"customer_id": ev.customer_id, "start": ev.start,
                                         "method": m, "reason": str(err)})
                        continue
                    parts.append(interval_rows(ev.customer_id, int(ev.Index), m, frame,
                                                loads[ev.customer_id]))
                done += 1
                if progress:
                    progress("ml", done, total)
        seconds["ml"] = time.perf_counter() - t0
    intervals = pd.concat([pd.DataFrame(p) for p in parts], ignore_index=True)
    choices = None
    if wanted_auto:
        t0 = time.perf_counter()
        intervals, choices = add_auto(intervals, events, methods)
        intervals = intervals[intervals["method"].isin((*methods, *wanted_auto))]
        seconds["auto"] = time.perf_counter() - t0
    summary = summarise(intervals, config.injected_reduction_ratio)
    return EvalResult(data.name, events, intervals, summary,
                      pd.DataFrame(failures, columns=["customer_id", "start", "method",
                                                      "reason"]), seconds, choices)


def draw_events_between(data: EvalDataset, config: PlaceboConfig, start, end) -> pd.DataFrame:
    """Placebo events whose start lies in [start, end) (UTC), drawn as in ``evaluate_core``."""
    lo, hi = pd.Timestamp(start), pd.Timestamp(end)
    days = int(np.ceil((hi - lo) / pd.Timedelta(days=1)))
    clipped = EvalDataset(data.name, {c: s[s.index < hi] for c, s in data.loads.items()},
                          data.timezone, data.holiday_country, data.weather, data.event_days)
    events = draw_placebo_events(clipped, config.model_copy(update={"eval_days": days}))
    return events[(events["start"] >= lo) & (events["start"] < hi)].reset_index(drop=True)


def score_on_events(models: dict[str, object], loads: dict[str, pd.Series],
                    events: pd.DataFrame, injected_reduction_ratio: float = 0.15
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Scores of fitted baselines on given placebo events: (summary, interval rows).

    ``models`` maps a method label to either a fitted ``MLBaseline`` (called with
    ``customer_id``) or a callable ``customer_id -> fitted rule baseline``.
    """
    parts = []
    for i, ev in enumerate(events.itertuples()):
        for label, model in models.items():
            fitted = model if isinstance(model, MLBaseline) else model(ev.customer_id)
            kwargs = {"customer_id": ev.customer_id} if isinstance(fitted, MLBaseline) else {}
            try:
                frame = fitted.predict(ev.start, ev.end, ev.notice_time, **kwargs)
            except DataError as err:  # no pool, no reading: scored without this event
                log.info("%s %s %s: %s", label, ev.customer_id, ev.start, err)
                continue
            parts.append(interval_rows(ev.customer_id, i, label, frame,
                                        loads[ev.customer_id]))
    if not parts:
        raise InsufficientDataError("no method could compute a baseline on these events")
    intervals = pd.concat([pd.DataFrame(p) for p in parts], ignore_index=True)
    return summarise(intervals, injected_reduction_ratio), intervals


def summarise(intervals: pd.DataFrame, injected_reduction_ratio: float = 0.15) -> pd.DataFrame:
    """Scores per method from ``evaluate_core``'s interval rows (see the module doc)."""
    rows = []
    f = injected_reduction_ratio
    for method, g in intervals.groupby("method", sort=False):
        g = g.dropna(subset=["actual_kw", "baseline_kw"])
        err = g["baseline_kw"] - g["actual_kw"]
        per_customer = g.assign(err2=err**2).groupby("customer_id").agg(
            err2=("err2", "mean"), mean_kw=("actual_kw", "mean"))
        cv = np.sqrt(per_customer["err2"]) / per_customer["mean_kw"]
        per_event = g.assign(err=err).groupby("event_no").agg(
            err=("err", "sum"), actual=("actual_kw", "sum"))
        injected = f * per_event["actual"]
        row = {
            "method": method,
            "n_events": int(g["event_no"].nunique()),
            "n_customers": int(g["customer_id"].nunique()),
            "cvrmse": float(cv.mean()),
            "cvrmse_pooled": float(np.sqrt(np.mean(err**2)) / g["actual_kw"].mean()),
            "nmbe": float(err.sum() / g["actual_kw"].sum()),
            "reduction_wape": float(np.abs(per_event["err"]).sum() / injected.sum()),
            "reduction_bias": float(per_event["err"].sum() / injected.sum()),
        }
        band = g[["baseline_p10_kw", "baseline_p90_kw"]].notna().all(axis=1)
        if band.any():
            b = g[band]
            row["coverage_p10_p90"] = float(np.mean((b["actual_kw"] >= b["baseline_p10_kw"])
                                                    & (b["actual_kw"] <= b["baseline_p90_kw"])))
        rows.append(row)
    return pd.DataFrame(rows).set_index("method")


ORACLE = "oracle_window_mean"


def oracle_window_mean(intervals: pd.DataFrame) -> pd.DataFrame:
    """Interval rows of an *oracle* that knows each event window's true mean load.

    Not a baseline (it reads the metered load in the window): its CV(RMSE) is the error left
    by the fluctuations inside the windows alone, a yardstick for how much of a data set's
    error any level-predicting baseline can remove. Scored under the method ``ORACLE``.
    """
    first = intervals.drop_duplicates(["event_no", "timestamp"])
    mean = first.groupby("event_no")["actual_kw"].transform("mean")
    out = first[["customer_id", "event_no", "timestamp", "actual_kw"]].copy()
    out.insert(2, "method", ORACLE)
    out["baseline_kw"] = mean.to_numpy()
    out["baseline_p10_kw"] = np.nan
    out["baseline_p90_kw"] = np.nan
    return out.reset_index(drop=True)


def ml_target_check(summary: pd.DataFrame, ml_method: str = "ml", ratio: float = 0.8,
                    max_abs_nmbe: float = 0.02) -> dict:
    """Does ``ml_method`` reach CVRMSE <= ratio x the best rule's with |NMBE| <= 2 %?"""
    rules = summary.loc[[m for m in summary.index if m in RULE_METHODS]]
    if rules.empty or ml_method not in summary.index:
        raise DataError("the summary needs at least one rule method and the ML method")
    best = rules["cvrmse"].idxmin()
    ml = summary.loc[ml_method]
    return {"best_rule": best, "best_rule_cvrmse": float(rules.loc[best, "cvrmse"]),
            "ml_cvrmse": float(ml["cvrmse"]), "ml_nmbe": float(ml["nmbe"]),
            "cvrmse_ratio": float(ml["cvrmse"] / rules.loc[best, "cvrmse"]),
            "meets_cvrmse": bool(ml["cvrmse"] <= ratio * rules.loc[best, "cvrmse"]),
            "meets_nmbe": bool(abs(ml["nmbe"]) <= max_abs_nmbe)}


def savings_recovery(load_kw: pd.Series, weather: pd.DataFrame, timezone: str,
                     holiday_country: str | None, baseline_end, reporting_start,
                     reporting_end=None, ml_params: dict | None = None) -> dict:
    """Saving over a reporting period from a weather-driven ML baseline fitted before it.

    The model (``MLBaseline(use_recent_level=False, use_day_of=False, target='scaled')``:
    calendar and temperature only, since recent readings would already hold the saving) is trained on readings before
    ``baseline_end`` and predicts ``[reporting_start, reporting_end)``. Returns the saving
    ``1 - sum actual / sum baseline`` over intervals with both, the energies (kWh) and the
    CV(RMSE) of the model on the last 60 days of the baseline period (in sample).
    """
    load, res = check_load(load_kw)
    params = {"use_recent_level": False, "use_day_of": False, "target": "scaled",
              **(ml_params or {})}
    model = MLBaseline(**params).fit(load, timezone=timezone, holiday_country=holiday_country,
                                     weather=weather, train_end=baseline_end)
    end = reporting_end or (load.index[-1] + res)
    frame = model.predict(reporting_start, end)
    actual = load.reindex(frame.index)
    ok = actual.notna()
    hours = res / pd.Timedelta(hours=1)
    base_kwh = float(frame.loc[ok, "baseline_kw"].sum() * hours)
    act_kwh = float(actual[ok].sum() * hours)
    fit_start = pd.Timestamp(baseline_end) - pd.Timedelta(days=60)
    fit_frame = model.predict(fit_start, baseline_end)
    fit_actual = load.reindex(fit_frame.index)
    from forecasting.metrics import cvrmse as _cvrmse

    return {"saving_ratio": 1 - act_kwh / base_kwh, "baseline_kwh": base_kwh,
            "actual_kwh": act_kwh, "n_intervals": int(ok.sum()),
            "fit_cvrmse_last_60d": _cvrmse(fit_actual, fit_frame["baseline_kw"])}
