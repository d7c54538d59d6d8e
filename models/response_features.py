"""Leak-free features of a customer's response to a demand-response event.

One row per (``event_id``, ``customer_id``) of ``events.csv`` (../shared/DATA_FORMAT.md).
Every feature uses only what was known at the event's ``notice_time``: the event's own
call (type, times, target), the customer's resources, the customer's metered load whose
interval had ended by the notice, and the customer's *earlier* events that had ENDED by the
notice (``end <= notice_time``). The event's own ``actual_kw`` and anything later never
enter a row; a test changes them and checks that the row does not move.

Glossary and units (the column names carry the unit):

- *lead*: ``start - notice_time`` in minutes; *duration*: ``end - start`` in minutes.
- *achievement*: ``actual_kw / target_kw`` (dimensionless; 1.0 = the commitment; valley
  filling: both negative, so an increase of load is a positive achievement);
  *delivered*: achievement >= the settlement threshold (``SettlementRule.
  min_achievement_ratio``, default 0.8).
- *eligible resource*: a resource of the customer that can take part given the call,
  by the rules of resources.csv: ``min_notice_minutes <= lead``, ``response_minutes <=
  lead``, ``duration <= max_duration_minutes``, and level ``III`` (planned) needs a lead of
  at least 240 minutes. A missing (NaN) rule value does not restrict.
- *typical load*: the mean metered load (kW) of the customer in the event's local clock
  window (e.g. 14:00-16:00) over the 7 days before the notice, using only intervals that
  had ended by the notice.

Columns (``FEATURE_DOCS`` holds the same text per column):

======================================  =====================================================
``event_type_code``                     index of ``event_type`` in ``EVENT_TYPES``
``notice_lead_minutes``                 minutes from notice to start
``duration_minutes``                    minutes from start to end
``start_local_hour_h``                  local clock hour of the start (14.5 = 14:30)
``month_local``                         local month of the start (1..12)
``day_type_code``                       index of the start's local day type in
                                        ``forecasting.calendar.DAY_TYPES`` (workday,
                                        swapped_workday, weekend, holiday)
``is_working_day``                      1 on workdays and swapped working weekends
``is_swapped_workday``                  1 on a weekend day made a working day (调休)
``is_holiday``                          1 on a public holiday or swapped rest day
``target_kw``                           committed change, kW (reduction > 0, valley < 0)
``eligible_capacity_kw``                summed ``capacity_kw`` of the eligible resources
``eligible_capacity_share``             eligible / all of the customer's resource capacity
``target_to_eligible_capacity_ratio``   ``|target_kw| / eligible_capacity_kw`` (NaN when
                                        nothing is eligible or no resources are known)
``eligible_capacity_to_target_ratio``   ``eligible_capacity_kw / |target_kw|`` (0 when
                                        nothing is eligible)
``target_to_typical_load_ratio``        ``|target_kw| / typical load`` (NaN without loads
                                        or when the typical load is not positive)
``hist_event_count``                    settled earlier events of the customer
``hist_mean_achievement``               their mean achievement
``hist_delivered_rate``                 their share delivered (achievement >= threshold)
``hist_last_achievement``               achievement of the latest of them
``hist_days_since_last_event_d``        days from the end of the latest ended event to
                                        the notice
``hist_events_30d_count``               events of the customer that ended in the 30 days
                                        before the notice (fatigue; settled or not)
``notice_met_capacity_to_target_ratio`` capacity of resources given their minimum notice
                                        (pro rata of max duration) / |target|; likewise
                                        ``short_notice_level_ii_``/``_iii_capacity_to_``
                                        ``target_ratio`` (short of their notice) and
                                        ``slow_response_capacity_to_target_ratio``
``hist_shrunk_delivered_rate``          delivered share shrunk to the portfolio's (Beta
                                        prior, 5 pseudo-events; events ended by the notice)
``hist_median_achievement``             median achievement of the earlier settled events
======================================  =====================================================

History features other than the counts are NaN when the customer has no earlier settled
event (LightGBM routes missing values itself). The frame also carries ``notice_time`` and ``start`` (UTC; for time
ordering, not model inputs, see ``META_COLUMNS``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from forecasting.calendar import DAY_TYPES, day_types
from forecasting.contract import EVENT_TYPES
from forecasting.errors import MissingColumnsError, NaiveTimestampError

KEY_COLUMNS = ("event_id", "customer_id")
META_COLUMNS = ("notice_time", "start")
EVENT_COLUMNS = ("event_id", "customer_id", "event_type", "notice_time", "start", "end",
                 "target_kw")
RESOURCE_COLUMNS = ("customer_id", "level", "capacity_kw", "response_minutes",
                    "min_notice_minutes", "max_duration_minutes")
LEVEL_III_MIN_NOTICE_MINUTES = 240
TYPICAL_LOAD_DAYS = 7
FATIGUE_DAYS = 30

FEATURE_DOCS: dict[str, str] = {
    "event_type_code": "index of event_type in forecasting.contract.EVENT_TYPES",
    "notice_lead_minutes": "minutes from notice_time to start",
    "duration_minutes": "minutes from start to end",
    "start_local_hour_h": "local clock hour of the start (14.5 = 14:30)",
    "month_local": "local month of the start (1..12)",
    "day_type_code": "index of the start's local day type in forecasting.calendar.DAY_TYPES",
    "is_working_day": "1 on workdays and swapped working weekends",
    "is_swapped_workday": "1 on a weekend day the holiday schedule made a working day",
    "is_holiday": "1 on a public holiday or swapped rest day",
    "target_kw": "committed change in kW (reduction positive, valley filling negative)",
    "eligible_capacity_kw": "summed capacity_kw of the resources eligible for this call",
    "eligible_capacity_share": "eligible capacity / all resource capacity of the customer",
    "target_to_eligible_capacity_ratio": "|target_kw| / eligible_capacity_kw (NaN if none)",
    "eligible_capacity_to_target_ratio": "eligible_capacity_kw / |target_kw|",
    "target_to_typical_load_ratio": "|target_kw| / mean load in the event's local clock "
                                    "window over the 7 days before notice",
    "hist_event_count": "settled events of the customer that ended by the notice",
    "hist_mean_achievement": "their mean achievement (actual_kw / target_kw)",
    "hist_delivered_rate": "their share with achievement >= the threshold",
    "hist_last_achievement": "achievement of the latest of them",
    "hist_days_since_last_event_d": "days from the end of the customer's latest ended event "
                                    "to the notice",
    "hist_events_30d_count": "events of the customer that ended in the 30 days before the "
                             "notice (fatigue)",
    "notice_met_capacity_to_target_ratio": "capacity (kW, pro rata of max_duration_minutes) "
                                           "of resources given at least their "
                                           "min_notice_minutes / |target_kw|",
    "short_notice_level_ii_capacity_to_target_ratio": "the same for level-II resources "
                                                      "given less than their minimum notice",
    "short_notice_level_iii_capacity_to_target_ratio": "the same for level-III resources "
                                                       "given less than their minimum notice",
    "slow_response_capacity_to_target_ratio": "the same for resources whose "
                                              "response_minutes exceed the lead",
    "hist_shrunk_delivered_rate": "the customer's delivered share shrunk to the portfolio's "
                                  "(both from events ended by the notice) with a Beta prior "
                                  "of 5 pseudo-events; the portfolio's share before any",
    "hist_median_achievement": "median achievement of the customer's settled events ended "
                               "by the notice (robust to no-shows)",
}
SHRINK_PSEUDO_EVENTS = 5.0
ROBUST_HISTORY_COLUMNS = ("hist_shrunk_delivered_rate", "hist_median_achievement")
FEATURE_COLUMNS = tuple(FEATURE_DOCS)


def achievement(events: pd.DataFrame) -> pd.Series:
    """``actual_kw / target_kw`` per (event_id, customer_id); NaN where unsettled."""
    _require(events, (*KEY_COLUMNS, "target_kw"), "events")
    actual = (events["actual_kw"] if "actual_kw" in events
              else pd.Series(np.nan, index=events.index))
    target = events["target_kw"].astype("float64").replace(0.0, np.nan)
    out = pd.Series(actual.astype("float64").to_numpy() / target.to_numpy(),
                    index=pd.MultiIndex.from_frame(events[list(KEY_COLUMNS)].astype(str)),
                    name="achievement")
    return out


def event_features(events: pd.DataFrame, loads_kw: Mapping[str, pd.Series] | None = None,
                   resources: pd.DataFrame | None = None, *, timezone: str,
                   holiday_country: str | None = "CN",
                   min_achievement_ratio: float = 0.8) -> pd.DataFrame:
    """Features of every (event, customer) row of ``events`` (see the module doc).

    Parameters
    ----------
    events : events.csv rows (tz-aware ``notice_time``, ``start``, ``end``; ``target_kw`` in
        kW; optional ``actual_kw`` in kW, used only for the history of later events).
    loads_kw : optional, customer_id -> metered load (kW, mean over each interval), indexed
        by tz-aware interval start on a regular grid.
    resources : optional resources.csv rows.
    timezone : IANA zone for the local clock and calendar (e.g. ``Asia/Shanghai``).
    holiday_country : ISO code for public holidays and swapped working days.
    min_achievement_ratio : the settlement threshold for ``hist_delivered_rate``.

    Returns
    -------
    DataFrame indexed by (event_id, customer_id) in the order of ``events``, with
    ``META_COLUMNS`` (UTC) and ``FEATURE_COLUMNS``.
    """
    _require(events, EVENT_COLUMNS, "events")
    ev = events.reset_index(drop=True).copy()
    for col in ("notice_time", "start", "end"):
        ev[col] = _utc(ev[col], col)
    ev["event_id"] = ev["event_id"].astype(str)
    ev["customer_id"] = ev["customer_id"].astype(str)
    ev["target_kw"] = ev["target_kw"].astype("float64")
    lead = (ev["start"] - ev["notice_time"]) / pd.Timedelta(minutes=1)
    duration = (ev["end"] - ev["start"]) / pd.Timedelta(minutes=1)
    local = pd.DatetimeIndex(ev["start"]).tz_convert(timezone)
    types = day_types(pd.Index(local.date), holiday_country)
    type_code = {t: i for i, t in enumerate(DAY_TYPES)}
    event_code = {t: i for i, t in enumerate(EVENT_TYPES)}
    out = pd.DataFrame({
        "notice_time": ev["notice_time"].to_numpy(),
        "start": ev["start"].to_numpy(),
        "event_type_code": ev["event_type"].astype(str).map(event_code).astype("float64"),
        "notice_lead_minutes": lead.to_numpy(),
        "duration_minutes": duration.to_numpy(),
        "start_local_hour_h": (local.hour + local.minute / 60.0).to_numpy(dtype="float64"),
        "month_local": local.month.to_numpy(dtype="float64"),
        "day_type_code": np.array([type_code[t] for t in types], dtype="float64"),
        "is_working_day": np.isin(types, ["workday", "swapped_workday"]).astype("float64"),
        "is_swapped_workday": (types == "swapped_workday").astype("float64"),
        "is_holiday": (types == "holiday").astype("float64"),
        "target_kw": ev["target_kw"].to_numpy(),
    })
    out = pd.concat([out, eligibility(ev, resources)], axis=1)
    typical = typical_load_kw(ev, loads_kw, timezone)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["target_to_typical_load_ratio"] = np.where(
            typical > 0, ev["target_kw"].abs().to_numpy() / typical, np.nan)
    out = pd.concat([out, history(ev, min_achievement_ratio)], axis=1)
    out = pd.concat([out, notice_capacity(ev, resources),
                     robust_history(ev, min_achievement_ratio)], axis=1)
    out.index = pd.MultiIndex.from_frame(ev[list(KEY_COLUMNS)])
    out["notice_time"] = ev["notice_time"].to_numpy()
    out["start"] = ev["start"].to_numpy()
    return out[[*META_COLUMNS, *FEATURE_COLUMNS]]


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


def history(ev: pd.DataFrame, min_achievement_ratio: float) -> pd.DataFrame:
    """The customer's record before each row's notice (events ended by then only)."""
    n = len(ev)
    cols = {c: np.full(n, np.nan) for c in FEATURE_COLUMNS
            if c.startswith("hist_") and c not in ROBUST_HISTORY_COLUMNS}
    ach = (ev["actual_kw"].astype("float64") if "actual_kw" in ev
           else pd.Series(np.nan, index=ev.index)) / ev["target_kw"].replace(0.0, np.nan)
    for rows in ev.groupby("customer_id", sort=False).groups.values():
        g = ev.loc[rows].assign(_ach=ach.loc[rows]).sort_values("end", kind="stable")
        ends = g["end"].to_numpy(dtype="datetime64[ns]").astype("int64")
        a = g["_ach"].to_numpy()
        settled = np.isfinite(a)
        cum_n = np.concatenate([[0], np.cumsum(settled)])
        cum_a = np.concatenate([[0.0], np.cumsum(np.where(settled, a, 0.0))])
        cum_d = np.concatenate([[0], np.cumsum(settled & (a >= min_achievement_ratio))])
        # position of the latest settled event among the first k (by end), -1 if none
        last_settled = np.concatenate(
            [[-1], np.maximum.accumulate(np.where(settled, np.arange(len(a)), -1))])
        notices = ev.loc[rows, "notice_time"].to_numpy(dtype="datetime64[ns]").astype("int64")
        k = np.searchsorted(ends, notices, side="right")  # events with end <= notice
        k30 = np.searchsorted(ends, notices - pd.Timedelta(days=FATIGUE_DAYS).value,
                              side="left")
        pos = np.asarray(rows)
        count = cum_n[k]
        with np.errstate(divide="ignore", invalid="ignore"):
            cols["hist_event_count"][pos] = count
            cols["hist_mean_achievement"][pos] = np.where(count > 0, cum_a[k] / count, np.nan)
            cols["hist_delivered_rate"][pos] = np.where(count > 0, cum_d[k] / count, np.nan)
        last = last_settled[k]
        cols["hist_last_achievement"][pos] = np.where(last >= 0, a[np.maximum(last, 0)], np.nan)
        latest_end = np.where(k > 0, ends[np.maximum(k - 1, 0)], 0)
        cols["hist_days_since_last_event_d"][pos] = np.where(
            k > 0, (notices - latest_end) / pd.Timedelta(days=1).value, np.nan)
        cols["hist_events_30d_count"][pos] = k - k30
    return pd.DataFrame(cols)


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


def robust_history(ev: pd.DataFrame, min_achievement_ratio: float) -> pd.DataFrame:
    """``hist_shrunk_delivered_rate`` and ``hist_median_achievement`` of each row, from the
    events that had ended by its notice (the portfolio's for the prior, the customer's)."""
    n = len(ev)
    ach = ((ev["actual_kw"].astype("float64") if "actual_kw" in ev
            else pd.Series(np.nan, index=ev.index))
           / ev["target_kw"].replace(0.0, np.nan)).to_numpy()
    ends = ev["end"].to_numpy(dtype="datetime64[ns]").astype("int64")
    notices = ev["notice_time"].to_numpy(dtype="datetime64[ns]").astype("int64")
    settled = np.isfinite(ach)
    order = np.argsort(np.where(settled, ends, np.iinfo("int64").max), kind="stable")
    n_settled = int(settled.sum())
    sorted_ends = ends[order][:n_settled]
    cum_delivered = np.concatenate([[0], np.cumsum(ach[order][:n_settled]
                                                   >= min_achievement_ratio)])
    k_all = np.searchsorted(sorted_ends, notices, side="right")
    with np.errstate(divide="ignore", invalid="ignore"):
        p0 = np.where(k_all > 0, cum_delivered[k_all] / np.maximum(k_all, 1), np.nan)
    rate = np.full(n, np.nan)
    median = np.full(n, np.nan)
    customers = ev["customer_id"].to_numpy()
    m = SHRINK_PSEUDO_EVENTS
    for cid in np.unique(customers):
        own = np.flatnonzero((customers == cid) & settled)
        own = own[np.argsort(ends[own], kind="stable")]
        own_ends, own_ach = ends[own], ach[own]
        for i in np.flatnonzero(customers == cid):
            k = int(np.searchsorted(own_ends, notices[i], side="right"))
            if np.isnan(p0[i]):
                continue
            delivered = float((own_ach[:k] >= min_achievement_ratio).sum())
            rate[i] = (delivered + m * p0[i]) / (k + m)
            if k:
                median[i] = float(np.median(own_ach[:k]))
    return pd.DataFrame({"hist_shrunk_delivered_rate": rate, "hist_median_achievement": median})


def _utc(values: pd.Series, name: str) -> pd.Series:
    stamps = pd.to_datetime(values)
    if getattr(stamps.dt, "tz", None) is None:
        raise NaiveTimestampError(f"events.{name} has naive timestamps; give them a UTC "
                                  "offset (e.g. 2025-07-01T14:00:00+08:00)")
    return stamps.dt.tz_convert("UTC").dt.as_unit("ns")


def _require(frame: pd.DataFrame, columns, name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise MissingColumnsError(f"{name} lacks column(s) {', '.join(missing)}; see "
                                  "../shared/DATA_FORMAT.md", missing)
