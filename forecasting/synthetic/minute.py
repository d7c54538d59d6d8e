"""SYNTHETIC 1-minute readings around some demand-response events (``event_readings`` table).

Invented data for the sample portfolio, so that capability metrics (response time, ramp
rate, adjustment accuracy: ``models.capability``) can be exercised on minute readings. A
capability test is called at short notice, so the events given 1-minute readings are the
reduction events of type ``MINUTE_EVENT_TYPES`` (real-time and peak) plus the latest
reduction event of the period (so a short portfolio has one). Each invited customer gets
one reading per minute from ``PRE_EVENT_MINUTES`` before the start to the end.

The minutes are consistent with the 15-minute measurements: the mean of an interval's
minutes is its metered ``load_kw`` (up to rounding to 0.1 kW), so their mean over the
event still gives the settled ``actual_kw``. Within the intervals:

- the response (counterfactual - metered load, per 15-minute interval, from the event
  model ``events``) ramps linearly from zero after a *delay*; the ramp lasts the
  capacity-weighted ``response_minutes`` of the customer's resources (level I 1-5 min,
  level II 10-15 min), shortened when the first quarter hour's metered response shows a
  faster one, and the delay is what makes the first quarter hour's mean equal the metered
  one. Where that cannot fit exactly the ramp is scaled within the interval;
- the load carries minute-to-minute AR(1) noise (``NOISE_SHARE`` of the load, e-folding
  ``NOISE_TAU_MINUTES``) whose mean over each interval is zero.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from forecasting.synthetic.random import ar1

MINUTE_EVENT_TYPES = ("real_time", "peak")
PRE_EVENT_MINUTES = 30
INTERVAL_MINUTES = 15
NOISE_SHARE = 0.01
NOISE_TAU_MINUTES = 3.0
DECIMALS = 1
TABLE = "event_readings"
COLUMNS = ["event_id", "customer_id", "timestamp", "load_kw"]


def minute_events(events: pd.DataFrame) -> list[str]:
    """Events given minute readings (see the module doc), in events.csv order."""
    if events.empty:
        return []
    reduction = events.groupby("event_id", sort=False)["target_kw"].min() > 0
    types = events.groupby("event_id", sort=False)["event_type"].first()
    chosen = set(reduction.index[reduction & types.isin(MINUTE_EVENT_TYPES)])
    starts = events.groupby("event_id", sort=False)["start"].min()[reduction]
    if len(starts):
        chosen.add(starts.idxmax())
    return [e for e in reduction.index if e in chosen]


def ramp_minutes(resources: pd.DataFrame, customer_id: str) -> float:
    """Capacity-weighted ``response_minutes`` of the customer's resources (at least 1)."""
    own = resources[resources["customer_id"] == customer_id] if not resources.empty else resources
    if own.empty or own["capacity_kw"].sum() <= 0:
        return float(INTERVAL_MINUTES)
    weighted = np.average(own["response_minutes"], weights=own["capacity_kw"])
    return float(max(1.0, weighted))


def ramp_shape(first_share: float, ramp_min: float, n_minutes: int) -> np.ndarray:
    """Share of the full response per minute from the start (0..1): zero for a delay, then
    linear over the ramp, chosen so that the mean over the first interval is ``first_share``
    (clipped to 0.02..1) with the ramp ending within that interval."""
    share = float(np.clip(first_share, 0.02, 1.0))
    mid = np.arange(INTERVAL_MINUTES) + 0.5

    def first_mean(delay: float, ramp: float) -> float:
        return float(np.clip((mid - delay) / ramp, 0.0, 1.0).mean())

    ramp0 = float(min(max(ramp_min, 0.5), INTERVAL_MINUTES))
    if first_mean(0.0, ramp0) < share:  # faster than the resources: shorten the ramp
        lo, hi = 1e-3, ramp0
        for _ in range(30):
            ramp = (lo + hi) / 2
            lo, hi = (lo, ramp) if first_mean(0.0, ramp) < share else (ramp, hi)
        delay, ramp = 0.0, (lo + hi) / 2
    else:  # the delay that gives the metered first quarter hour (ramp kept in it)
        lo, hi = 0.0, float(INTERVAL_MINUTES)
        for _ in range(30):
            delay = (lo + hi) / 2
            ramp = min(ramp0, INTERVAL_MINUTES - delay)
            lo, hi = (delay, hi) if first_mean(delay, ramp) > share else (lo, delay)
        delay = (lo + hi) / 2
        ramp = max(min(ramp0, INTERVAL_MINUTES - delay), 1e-3)
    minutes = np.arange(n_minutes) + 0.5
    return np.clip((minutes - delay) / ramp, 0.0, 1.0)


def customer_minutes(rng: np.random.Generator, metered_kw: np.ndarray, response_kw: np.ndarray,
                     n_pre: int, ramp_min: float) -> np.ndarray:
    """Minute load (kW) over ``n_pre`` pre-event intervals and the event's intervals.

    ``metered_kw`` and ``response_kw``: per 15-minute interval (kW); the response of the
    pre-event intervals is ignored (flat)."""
    n = metered_kw.size
    event_response = response_kw[n_pre:]
    plateau = event_response[1:].mean() if event_response.size > 1 else event_response[0]
    first = event_response[0] / plateau if abs(plateau) > 1e-6 else 1.0
    shape = np.ones(n * INTERVAL_MINUTES)
    shape[n_pre * INTERVAL_MINUTES:] = ramp_shape(first, ramp_min,
                                                  event_response.size * INTERVAL_MINUTES)
    by_interval = shape.reshape(n, INTERVAL_MINUTES)
    means = by_interval.mean(axis=1, keepdims=True)
    response = np.zeros_like(by_interval)
    event = np.arange(n) >= n_pre
    scaled = np.where(means > 1e-9, by_interval / np.where(means > 1e-9, means, 1.0), 1.0)
    response[event] = scaled[event] * response_kw[event, None]
    deviation = response - response.mean(axis=1, keepdims=True)
    level = max(float(np.abs(metered_kw).mean()), 1.0)
    noise = ar1(rng, n * INTERVAL_MINUTES, NOISE_TAU_MINUTES, NOISE_SHARE * level)
    noise = noise.reshape(n, INTERVAL_MINUTES)
    noise -= noise.mean(axis=1, keepdims=True)
    return (metered_kw[:, None] - deviation + noise).ravel()


def event_readings(rng: np.random.Generator, frames: dict[str, pd.DataFrame],
                   load_kw_without_events: pd.DataFrame) -> pd.DataFrame:
    """The ``event_readings`` table (``COLUMNS``; UTC 1-minute stamps) of the portfolio's
    ``frames`` and the counterfactual load of its load sites (``SyntheticPortfolio``)."""
    events, sites = frames["events"], frames["sites"]
    meas = frames["measurements"]
    site_of = sites.dropna(subset=["customer_id"]).query("kind == 'load'")
    site_of = dict(zip(site_of["customer_id"], site_of["site_id"], strict=True))
    index = load_kw_without_events.index
    stamps_ns = index.as_unit("ns").asi8
    metered_of = {sid: rows["load_kw"].to_numpy() for sid, rows in meas.groupby("site_id")
                  if sid in set(site_of.values())}
    ramp_of = {c: ramp_minutes(frames["resources"], c) for c in site_of}
    chosen = events[events["event_id"].isin(minute_events(events))]
    order = {e: i for i, e in enumerate(minute_events(events))}
    chosen = chosen.iloc[np.argsort(chosen["event_id"].map(order).to_numpy(), kind="stable")]
    ids, customers, starts, loads = [], [], [], []
    minute_ns = 60_000_000_000
    for row in chosen.itertuples():
        site_id = site_of[row.customer_id]
        first = int(np.searchsorted(stamps_ns, pd.Timestamp(row.start).as_unit("ns").value))
        stop = int(np.searchsorted(stamps_ns, pd.Timestamp(row.end).as_unit("ns").value))
        n_pre = min(PRE_EVENT_MINUTES // INTERVAL_MINUTES, first)
        window = slice(first - n_pre, stop)
        metered = metered_of[site_id][window]
        response = load_kw_without_events[site_id].to_numpy()[window] - metered
        load = customer_minutes(rng, metered, response, n_pre, ramp_of[row.customer_id])
        ids.append(np.full(load.size, row.event_id, dtype=object))
        customers.append(np.full(load.size, row.customer_id, dtype=object))
        starts.append(stamps_ns[first - n_pre] + minute_ns * np.arange(load.size))
        loads.append(np.round(load, DECIMALS))
    if not loads:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in COLUMNS})
    return pd.DataFrame({
        "event_id": np.concatenate(ids), "customer_id": np.concatenate(customers),
        "timestamp": pd.to_datetime(np.concatenate(starts), utc=True).as_unit(index.unit),
        "load_kw": np.concatenate(loads)})


def write_event_readings(readings: pd.DataFrame, out_dir: Path) -> Path | None:
    """Write ``event_readings.parquet`` (none when empty) and describe it in SYNTHETIC.txt."""
    if readings.empty:
        return None
    path = Path(out_dir) / f"{TABLE}.parquet"
    readings.to_parquet(path, index=False, compression="zstd")
    note = Path(out_dir) / "SYNTHETIC.txt"
    if note.exists():
        text = note.read_text(encoding="utf-8")
        line = (f"  {TABLE}.parquet  {len(readings):,} rows of 1-minute load_kw of "
                f"{readings['event_id'].nunique()} events' customers, {PRE_EVENT_MINUTES} min "
                "before each start to its end\n                        (extension of the "
                "contract; README: capability metrics)\n")
        note.write_text(text.replace("\nThe data are clean", line + "\nThe data are clean", 1),
                        encoding="utf-8")
    return path
