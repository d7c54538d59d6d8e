"""Features of a demand-response call against the customer's resources and metered load.

Per row of the events frame (``notice_time``, ``start``, ``end`` UTC; ``target_kw`` kW), using
only what was known at the notice (see ``models.response_features`` for the glossary):

- ``eligibility``: capacity (kW) of the resources eligible for the call by the rules of
  resources.csv (``eligible_mask``), its share of all the customer's capacity and its ratios
  to ``|target_kw|``;
- ``notice_capacity``: capacity given its minimum notice, short of it by level, and too slow
  to respond, pro rata of ``max_duration_minutes``, as ratios to ``|target_kw|``;
- ``typical_load_kw``: the mean load in the event's local clock window over the 7 days
  before the notice, from intervals that had ended by the notice.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from forecasting.errors import MissingColumnsError, NaiveTimestampError

RESOURCE_COLUMNS = ("customer_id", "level", "capacity_kw", "response_minutes",
                    "min_notice_minutes", "max_duration_minutes")
LEVEL_III_MIN_NOTICE_MINUTES = 240
TYPICAL_LOAD_DAYS = 7


def eligible_mask(resources: pd.DataFrame, lead_minutes: float, duration_minutes: float
                  ) -> np.ndarray:
    """Which ``resources`` rows can take part in a call with this lead and duration."""
    def ok(values: pd.Series, test) -> np.ndarray:
        v = values.astype("float64").to_numpy()
        return np.isnan(v) | test(v)

    mask = (ok(resources["min_notice_minutes"], lambda v: v <= lead_minutes)
            & ok(resources["response_minutes"], lambda v: v <= lead_minutes)
            & ok(resources["max_duration_minutes"], lambda v: v >= duration_minutes))
    level_iii = resources["level"].astype(str).to_numpy() == "III"
    return mask & ~(level_iii & (lead_minutes < LEVEL_III_MIN_NOTICE_MINUTES))


def eligibility(ev: pd.DataFrame, resources: pd.DataFrame | None) -> pd.DataFrame:
    """Eligible capacity (kW) and its ratios to the target, per row of ``ev``."""
    n = len(ev)
    cols = ("eligible_capacity_kw", "eligible_capacity_share",
            "target_to_eligible_capacity_ratio", "eligible_capacity_to_target_ratio")
    if resources is None or resources.empty:
        return pd.DataFrame({c: np.full(n, np.nan) for c in cols})
    _require(resources, RESOURCE_COLUMNS, "resources")
    res = resources.assign(customer_id=resources["customer_id"].astype(str))
    arrays = {c: (g["capacity_kw"].astype("float64").to_numpy(),
                  *(g[k].astype("float64").to_numpy() for k in
                    ("min_notice_minutes", "response_minutes", "max_duration_minutes")),
                  g["level"].astype(str).to_numpy() == "III")
              for c, g in res.groupby("customer_id")}
    eligible = np.zeros(n)
    total = np.zeros(n)
    lead = ((ev["start"] - ev["notice_time"]) / pd.Timedelta(minutes=1)).to_numpy()
    duration = ((ev["end"] - ev["start"]) / pd.Timedelta(minutes=1)).to_numpy()
    for i, cid in enumerate(ev["customer_id"]):
        if cid not in arrays:
            continue
        cap, notice, response, max_dur, level_iii = arrays[cid]
        total[i] = cap.sum()
        with np.errstate(invalid="ignore"):  # the rules of eligible_mask, on arrays
            mask = ((np.isnan(notice) | (notice <= lead[i]))
                    & (np.isnan(response) | (response <= lead[i]))
                    & (np.isnan(max_dur) | (max_dur >= duration[i]))
                    & ~(level_iii & (lead[i] < LEVEL_III_MIN_NOTICE_MINUTES)))
        eligible[i] = cap[mask].sum()
    target = ev["target_kw"].abs().to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(total > 0, eligible / np.where(total > 0, total, 1.0), np.nan)
        to_eligible = np.where(eligible > 0, target / np.where(eligible > 0, eligible, 1.0),
                               np.nan)
        to_target = eligible / target
    return pd.DataFrame({cols[0]: eligible, cols[1]: share, cols[2]: to_eligible,
                         cols[3]: to_target})


def notice_capacity(ev: pd.DataFrame, resources: pd.DataFrame | None) -> pd.DataFrame:
    """Resource capacity by whether the call gives it its notice and response time, as
    ratios to |target_kw| (each resource pro rata of ``max_duration_minutes`` / duration):
    a resource given less than its minimum notice may still deliver part of it."""
    names = ("notice_met_capacity_to_target_ratio",
             "short_notice_level_ii_capacity_to_target_ratio",
             "short_notice_level_iii_capacity_to_target_ratio",
             "slow_response_capacity_to_target_ratio")
    n = len(ev)
    if resources is None or resources.empty:
        return pd.DataFrame({c: np.full(n, np.nan) for c in names})
    res = resources.assign(customer_id=resources["customer_id"].astype(str))
    arrays = {c: (g["capacity_kw"].astype("float64").to_numpy(),
                  g["max_duration_minutes"].astype("float64").fillna(np.inf).to_numpy(),
                  g["min_notice_minutes"].astype("float64").fillna(0.0).to_numpy(),
                  g["response_minutes"].astype("float64").fillna(0.0).to_numpy(),
                  g["level"].astype(str).to_numpy())
              for c, g in res.groupby("customer_id")}
    lead = ((ev["start"] - ev["notice_time"]) / pd.Timedelta(minutes=1)).to_numpy()
    duration = ((ev["end"] - ev["start"]) / pd.Timedelta(minutes=1)).to_numpy()
    out = np.zeros((n, 4))
    for i, cid in enumerate(ev["customer_id"]):
        if cid not in arrays:
            continue
        capacity, max_dur, notice, response, level = arrays[cid]
        cap = capacity * np.minimum(1.0, max_dur / max(duration[i], 1.0))
        met = notice <= lead[i]
        out[i] = (cap[met].sum(), cap[~met & (level == "II")].sum(),
                  cap[~met & (level == "III")].sum(), cap[response > lead[i]].sum())
    target = ev["target_kw"].abs().to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = out / target[:, None]
    return pd.DataFrame(ratios, columns=list(names))


def typical_load_kw(ev: pd.DataFrame, loads_kw: Mapping[str, pd.Series] | None,
                    timezone: str) -> np.ndarray:
    """Mean load (kW) in each row's local clock window over the 7 days before its notice.

    Only intervals that had ended by the notice count (``timestamp + resolution <=
    notice_time``); NaN when no reading qualifies or no loads are given.
    """
    out = np.full(len(ev), np.nan)
    if not loads_kw:
        return out
    prepared: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, pd.Timedelta]] = {}
    start_local = pd.DatetimeIndex(ev["start"]).tz_convert(timezone)
    start_min = (start_local.hour * 60 + start_local.minute).to_numpy()
    dur = ((ev["end"] - ev["start"]) / pd.Timedelta(minutes=1)).to_numpy()
    for i, cid in enumerate(ev["customer_id"]):
        if cid not in loads_kw:
            continue
        if cid not in prepared:
            prepared[cid] = _prepare_load(loads_kw[cid], cid, timezone)
        stamps, minutes, values, res = prepared[cid]
        notice = ev["notice_time"].iloc[i]
        lo = np.searchsorted(stamps, (notice - pd.Timedelta(days=TYPICAL_LOAD_DAYS)).value)
        hi = np.searchsorted(stamps, (notice - res).value, side="right")
        if hi <= lo:
            continue
        m = minutes[lo:hi]
        s, e = start_min[i], (start_min[i] + dur[i]) % 1440
        if dur[i] >= 1440:
            inside = np.ones(len(m), dtype=bool)
        elif s < e:
            inside = (m >= s) & (m < e)
        else:  # the window crosses local midnight
            inside = (m >= s) | (m < e)
        chosen = values[lo:hi][inside]
        chosen = chosen[np.isfinite(chosen)]
        if chosen.size:
            out[i] = chosen.mean()
    return out


def _prepare_load(series: pd.Series, cid: str, timezone: str):
    if not isinstance(series.index, pd.DatetimeIndex) or series.index.tz is None:
        raise NaiveTimestampError(f"loads_kw[{cid!r}]: the index needs tz-aware timestamps "
                                  "(interval starts with a UTC offset)")
    s = series.sort_index()
    idx = s.index.tz_convert("UTC").as_unit("ns")
    steps = np.diff(idx.asi8)
    res = pd.Timedelta(int(np.median(steps)) if steps.size else 15 * 60 * 10**9, unit="ns")
    local = idx.tz_convert(timezone)
    minutes = (local.hour * 60 + local.minute).to_numpy()
    return idx.asi8, minutes, s.to_numpy(dtype="float64"), res


def _require(frame: pd.DataFrame, columns, name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise MissingColumnsError(f"{name} lacks column(s) {', '.join(missing)}; see "
                                  "../shared/DATA_FORMAT.md", missing)
