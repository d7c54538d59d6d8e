"""The customer's record before each event's notice: history features of the response model.

Only events that had ENDED by the notice (``end <= notice_time``) count; the event's own
``actual_kw`` and anything later never enter its row. *Achievement* is ``actual_kw /
target_kw`` (NaN where unsettled or the target is 0); *delivered*: achievement >= the
settlement threshold ``min_achievement_ratio``.

- ``history``: count, mean, delivered share and latest of the customer's settled earlier
  events, days since its latest ended event and the events ended in the 30 days before the
  notice (fatigue);
- ``robust_history``: the delivered share shrunk to the portfolio's (Beta prior of
  ``SHRINK_PSEUDO_EVENTS`` pseudo-events) and the median achievement.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FATIGUE_DAYS = 30
SHRINK_PSEUDO_EVENTS = 5.0
HISTORY_COLUMNS = ("hist_event_count", "hist_mean_achievement", "hist_delivered_rate",
                   "hist_last_achievement", "hist_days_since_last_event_d",
                   "hist_events_30d_count")
ROBUST_HISTORY_COLUMNS = ("hist_shrunk_delivered_rate", "hist_median_achievement")


def history(ev: pd.DataFrame, min_achievement_ratio: float) -> pd.DataFrame:
    """The customer's record before each row's notice (events ended by then only)."""
    n = len(ev)
    cols = {c: np.full(n, np.nan) for c in HISTORY_COLUMNS}
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
