"""Available flexible capacity per customer and response level for a window (pure, no I/O).

What the portfolio could shed, per customer and per response level I/II/III, in each
15-minute interval of a window, for an event notified at ``notice_time``: what the
platform's real-time packets call ``resource_pools.level_N.available_capacity``. Inputs are
resources.csv rows (../shared/DATA_FORMAT.md) and each customer's load forecast (quantiles,
kW); the I/O that finds the forecast (registered champions, rule baselines) lives in
``pipelines.cli_bid.load_quantiles``.

Glossary (customer ``k``, level ``L``, interval ``t``, load quantile ``q`` in 0.1/0.5/0.9):

- ``R_kL`` (``resources_kw``): sum of ``capacity_kw`` of ``k``'s resources of level ``L``
  that may answer the event (``models.dispatch_eligibility.eligibility``: level, notice,
  response time, maximum duration, approval); the others are listed in ``excluded``;
- ``D_kq(t)`` = max(load quantile ``q`` of ``k`` at ``t``, 0) (kW): a customer cannot shed
  more than it would draw (net infeed: nothing to shed);
- the levels of a customer share its load, fastest first:
  ``C_kI = min(R_kI, D)``, ``C_kII = min(R_kII, D - C_kI)``,
  ``C_kIII = min(R_kIII, D - C_kI - C_kII)``, so they add up to
  ``C_k = min(sum_L R_kL, D)`` (row level ``all``).

Every ``C`` is a non-decreasing function of the load, so the capacity at the load's
``q``-quantile is the capacity's ``q``-quantile: ``p10_kw`` (at the load's P10) is the
pessimistic one. Over the window, ``by_customer`` gives the mean over its intervals (the
settlement measures the mean reduction; exact for the quantiles when a customer's load
quantiles move together across the window). Portfolio ``totals`` add the customers'
quantiles (exact when the customers' loads are comonotone; for independent loads the
portfolio's P10 is higher: the sum is a cautious P10, a generous P90).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forecasting.contract import LEVELS
from forecasting.errors import DataError, MissingColumnsError, UnknownSiteError
from forecasting.portfolio import as_utc
from models.dispatch_eligibility import Instruction, eligibility, shorten

QUANTILE_COLUMNS = {"p10": "q0.1", "p50": "q0.5", "p90": "q0.9"}
CAPACITY_COLUMNS = ("p10_kw", "p50_kw", "p90_kw")
INTERVAL_MINUTES = 15
MAX_RESOLUTION = pd.Timedelta(minutes=60)  # coarsest load forecast spread over 15 minutes


class MissingForecastError(DataError):
    """A customer with eligible resources has no load forecast for (part of) the window."""


@dataclass
class CapacityForecast:
    """The answer of ``available_capacity`` (kW: mean power; see the module doc)."""

    start: pd.Timestamp
    end: pd.Timestamp
    notice_time: pd.Timestamp
    intervals: pd.DataFrame
    by_customer: pd.DataFrame
    totals: pd.DataFrame
    excluded: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    def headroom_kw(self, quantile: str = "p50") -> dict[str, float]:
        """customer_id -> the customer's window capacity (level ``all``) at ``quantile``
        (``p10``/``p50``/``p90``): the per-customer limit ``models.dispatch.decompose``
        takes as ``headroom_kw``."""
        column = f"{check_quantile(quantile)}_kw"
        rows = self.by_customer[self.by_customer["level"] == "all"]
        return dict(zip(rows["customer_id"].astype(str), rows[column].astype(float),
                        strict=True))


def check_quantile(quantile: str) -> str:
    if quantile not in QUANTILE_COLUMNS:
        raise DataError(f"unknown load quantile {quantile!r}, expected one of "
                        f"{', '.join(QUANTILE_COLUMNS)}")
    return quantile


def window_grid(start, end) -> pd.DatetimeIndex:
    """15-minute interval starts of [start, end) (UTC); the window must lie on the grid."""
    s, e = as_utc(start, "start"), as_utc(end, "end")
    step = pd.Timedelta(minutes=INTERVAL_MINUTES)
    if e <= s:
        raise DataError(f"end {e.isoformat()} must be after start {s.isoformat()}")
    if s.floor(step) != s or e.floor(step) != e:
        raise DataError(f"start {s.isoformat()} and end {e.isoformat()} must lie on the "
                        f"{INTERVAL_MINUTES}-minute grid (e.g. 14:00, 14:15)")
    return pd.date_range(s, e, freq=step, inclusive="left", name="timestamp", unit="ns")


def _load_matrix(load: pd.DataFrame, customers: list[str], grid: pd.DatetimeIndex
                 ) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """customer -> (len(grid), 3) load quantiles (kW, >= 0) on the 15-minute grid, and the
    ``source`` of each customer's forecast."""
    need = ["customer_id", "timestamp", *QUANTILE_COLUMNS.values()]
    missing = [c for c in need if c not in load.columns]
    if missing:
        raise MissingColumnsError(f"load forecast: missing column(s) {missing}; give "
                                  "customer_id, timestamp and the quantiles q0.1, q0.5, q0.9 "
                                  "(kW)", missing)
    stamps = pd.DatetimeIndex(load["timestamp"])
    if len(stamps) and stamps.tz is None:
        raise DataError("load forecast: naive timestamps; give them with a UTC offset "
                        "(e.g. 2025-07-01T14:00:00+08:00)")
    step = pd.Timedelta(minutes=INTERVAL_MINUTES)
    frame = load.assign(timestamp=stamps.tz_convert("UTC").as_unit("ns").floor(step) if len(
        stamps) else stamps, customer_id=load["customer_id"].astype(str))
    values, sources = {}, {}
    for cid in customers:
        rows = frame[frame["customer_id"] == cid]
        quantiles = (rows.groupby("timestamp")[list(QUANTILE_COLUMNS.values())].mean()
                     .sort_index())
        steps = np.diff(quantiles.index.asi8)
        width = min(pd.Timedelta(int(steps.min()), unit="ns") if len(steps) else step,
                    MAX_RESOLUTION)  # a 60-minute row covers its four quarter hours
        on_grid = quantiles.reindex(grid, method="ffill",
                                    tolerance=max(width, step) - pd.Timedelta(minutes=1))
        gap = on_grid.isna().any(axis=1).to_numpy()
        if gap.any():
            raise MissingForecastError(
                f"no load forecast for customer {cid} at {grid[gap][0].isoformat()} "
                f"({int(gap.sum())} of {len(grid)} intervals of the window "
                f"{grid[0].isoformat()} .. {(grid[-1] + step).isoformat()} missing); forecast "
                "its load sites for the window (vpp train / vpp forecast) or give history for "
                "its baseline")
        q = np.sort(np.maximum(on_grid.to_numpy(dtype="float64"), 0.0), axis=1)
        values[cid] = q
        source = rows["source"].dropna().astype(str).unique() if "source" in rows else []
        sources[cid] = "; ".join(source) if len(source) else "given"
    return values, sources


def available_capacity(resources: pd.DataFrame, load: pd.DataFrame, start, end, notice_time,
                       *, allow_approval: bool = False,
                       customers: list[str] | None = None) -> CapacityForecast:
    """Capacity per customer and level for [start, end) notified at ``notice_time``.

    ``resources``: resources.csv rows. ``load``: the customers' load forecast, one row per
    customer and interval: ``customer_id``, ``timestamp`` (tz-aware interval start; 5- to
    60-minute rows are averaged or spread onto the 15-minute grid), ``q0.1``, ``q0.5``,
    ``q0.9`` (kW), optional ``source`` (where the forecast came from, copied to the output).
    ``customers``: restrict to these (default: every customer with resources).

    Raises ``MissingForecastError`` (a ``DataError``) naming the customer and the first
    interval when a customer with eligible resources has no forecast for the window, and
    ``UnknownSiteError`` for a requested customer without resources. Formulas in the module
    doc.
    """
    grid = window_grid(start, end)
    probe = Instruction(target_kw=1.0, start=start, end=end, notice_time=notice_time,
                        allow_approval=allow_approval)
    table = eligibility(resources, probe)
    known = sorted(table["customer_id"].astype(str).unique())
    if customers:
        unknown = sorted(set(map(str, customers)) - set(known))
        if unknown:
            raise UnknownSiteError(f"no resources for customer(s) {unknown}; customers with "
                            f"resources: {shorten(known, 10)}")
        table = table[table["customer_id"].astype(str).isin(set(map(str, customers)))]
        known = sorted(set(map(str, customers)))
    el = table[table["eligible"]]
    by_level = (el.groupby([el["customer_id"].astype(str), "level"])["capacity_kw"].sum()
                .unstack("level").reindex(index=known, columns=list(LEVELS)).fillna(0.0))
    counts = (el.groupby([el["customer_id"].astype(str), "level"]).size()
              .unstack("level").reindex(index=known, columns=list(LEVELS)).fillna(0)
              .astype(int))
    with_capacity = [c for c in known if by_level.loc[c].sum() > 0]
    loads, sources = _load_matrix(load, with_capacity, grid)
    interval_rows, window_rows, notes = [], [], []
    for cid in known:
        if cid in loads:
            demand = loads[cid]
        else:  # nothing eligible: no load needed, capacity 0
            demand = np.zeros((len(grid), 3))
            sources[cid] = "not needed (no eligible resource)"
        left = demand.copy()
        per_level = {}
        for level in LEVELS:
            taken = np.minimum(by_level.loc[cid, level], left)
            left = left - taken
            per_level[level] = taken
        per_level["all"] = sum(per_level[lvl] for lvl in LEVELS)
        total_resources = float(by_level.loc[cid].sum())
        binding = bool((per_level["all"][:, 0] < total_resources - 1e-9).any())
        if binding and cid in loads:
            notes.append(f"customer {cid}: its load P10 "
                         f"({demand[:, 0].min():.1f} kW at the lowest) caps its eligible "
                         f"resources ({total_resources:.1f} kW)")
        for level, values in per_level.items():
            frame = pd.DataFrame(values, columns=list(CAPACITY_COLUMNS))
            frame.insert(0, "timestamp", grid)
            frame.insert(0, "level", level)
            frame.insert(0, "customer_id", cid)
            interval_rows.append(frame)
            resources_kw = total_resources if level == "all" else float(by_level.loc[cid, level])
            n = int(counts.loc[cid].sum()) if level == "all" else int(counts.loc[cid, level])
            mean = values.mean(axis=0)
            load_mean = demand.mean(axis=0)
            window_rows.append({
                "customer_id": cid, "level": level, "n_resources": n,
                "resources_kw": resources_kw, **dict(zip(CAPACITY_COLUMNS, mean, strict=True)),
                "load_p10_kw": load_mean[0], "load_p50_kw": load_mean[1],
                "load_p90_kw": load_mean[2], "source": sources[cid]})
    intervals = pd.concat(interval_rows, ignore_index=True)
    by_customer = pd.DataFrame(window_rows)
    totals = (by_customer.groupby("level", sort=False)
              [["n_resources", "resources_kw", *CAPACITY_COLUMNS]].sum().reset_index())
    excluded = table.loc[~table["eligible"], ["resource_id", "customer_id", "level",
                                              "capacity_kw", "reason"]].reset_index(drop=True)
    if len(excluded):
        notes.append(f"{len(excluded)} resource(s) cannot answer this window and notice "
                     f"(see excluded): {shorten(excluded['resource_id'].astype(str).tolist())}")
    return CapacityForecast(as_utc(start, "start"), as_utc(end, "end"),
                            as_utc(notice_time, "notice_time"), intervals, by_customer, totals,
                            excluded, notes)


def rule_baseline_quantiles(load_kw: pd.Series, *, timezone: str, holiday_country,
                            event_days, start, end, notice_time, customer_id: str,
                            method: str = "similar_days") -> pd.DataFrame:
    """A load forecast from a rule baseline, for a customer without a forecasting model.

    Fits ``models.baselines`` ``method`` (default similar days: the mean of the latest
    normal days of the event day's type) on the readings whose interval ended by
    ``notice_time`` only. Returns a frame indexed by the window's interval starts (UTC, the
    load's resolution) with ``q0.5`` = the baseline (kW) and ``q0.1``/``q0.9`` = the 10th/90th
    percentile of the pool days' load at the same local clock time (the pool's own spread;
    five days give a rough band). Raises ``InsufficientDataError`` when no pool can be found.
    """
    from models.baselines import check_load, make_baseline

    notice = as_utc(notice_time, "notice_time")
    values, res = check_load(load_kw, f"load of customer {customer_id}")
    known = values[values.index + res <= notice]
    model = make_baseline(method).fit(known, timezone=timezone, holiday_country=holiday_country,
                                      event_days=event_days, customer_id=customer_id)
    details = model.predict_details(start, end, notice)
    index = details.frame.index
    base = details.frame["baseline_kw"].to_numpy()
    pool = details.pool_days
    if pool:
        local = index.tz_convert(timezone).tz_localize(None)
        day = index[0].tz_convert(timezone).date()
        rows = []
        for d in pool:
            shifted = (local - pd.Timedelta(days=(day - d).days)).tz_localize(
                timezone, nonexistent="shift_forward", ambiguous=False).tz_convert("UTC")
            rows.append(known.reindex(shifted).to_numpy())
        band = np.nanquantile(np.vstack(rows), [0.1, 0.9], axis=0)
    else:  # e.g. a pre-event average: no pool, no spread
        band = np.vstack([base, base])
    q = np.sort(np.column_stack([band[0], base, band[1]]), axis=1)
    return pd.DataFrame(q, index=index, columns=list(QUANTILE_COLUMNS.values()))

