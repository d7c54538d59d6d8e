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

This module assembles the row and holds the call's own features; the features against the
customer's resources and load live in ``models.response_call_features``, the history
features in ``models.response_history`` (every name stays importable from here).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from forecasting.calendar import DAY_TYPES, day_types
from forecasting.contract import EVENT_TYPES
from forecasting.errors import NaiveTimestampError
from models.response_call_features import (  # noqa: F401  (re-exported)
    LEVEL_III_MIN_NOTICE_MINUTES,
    RESOURCE_COLUMNS,
    TYPICAL_LOAD_DAYS,
    _prepare_load,
    _require,
    eligibility,
    eligible_mask,
    notice_capacity,
    typical_load_kw,
)
from models.response_history import (  # noqa: F401  (re-exported)
    FATIGUE_DAYS,
    HISTORY_COLUMNS,
    ROBUST_HISTORY_COLUMNS,
    SHRINK_PSEUDO_EVENTS,
    history,
    robust_history,
)

KEY_COLUMNS = ("event_id", "customer_id")
META_COLUMNS = ("notice_time", "start")
EVENT_COLUMNS = ("event_id", "customer_id", "event_type", "notice_time", "start", "end",
                 "target_kw")

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


def _utc(values: pd.Series, name: str) -> pd.Series:
    stamps = pd.to_datetime(values)
    if getattr(stamps.dt, "tz", None) is None:
        raise NaiveTimestampError(f"events.{name} has naive timestamps; give them a UTC "
                                  "offset (e.g. 2025-07-01T14:00:00+08:00)")
    return stamps.dt.tz_convert("UTC").dt.as_unit("ns")
