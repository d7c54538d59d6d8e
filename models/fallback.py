"""Fallback forecast when the inputs are not good enough for the trained model.

``ClimatologyFallback`` needs only the site's own past readings: for each target interval it
takes the readings at the same local time of day on the latest ``days`` known days of the
same kind of day (working vs non-working, Chinese swapped days included, for load; all days
for PV and wind) and answers their empirical quantiles. No weather, no model: it cannot
leak, cannot cross, stays within the range of what was measured (PV 0 at night), and is
clearly flagged ``fallback_climatology`` where used.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.calendar import calendar_features
from forecasting.errors import InsufficientDataError
from forecasting.portfolio import SiteData, as_utc
from models.quantile import check_quantiles


class ClimatologyFallback:
    """Same-time-of-day empirical quantiles over recent comparable days."""

    def __init__(self, days: int = 14, max_lookback_days: int = 60):
        self.days = days
        self.max_lookback_days = max_lookback_days

    def forecast(self, data: SiteData, issue_time, targets: pd.DatetimeIndex, quantiles
                 ) -> pd.DataFrame:
        issue = as_utc(issue_time, "issue_time")
        levels = check_quantiles(quantiles)
        site = data.site
        known = data.known_at(issue).values_kw
        known = known[known.index >= issue - pd.Timedelta(days=self.max_lookback_days)]
        if known.empty:
            raise InsufficientDataError(
                f"site {site.site_id}: no readings in the {self.max_lookback_days} days before "
                f"{issue}; not even a fallback forecast is possible")
        targets = pd.DatetimeIndex(targets).tz_convert("UTC")
        cal_hist = calendar_features(known.index, site.timezone, site.holiday_country)
        cal_tgt = calendar_features(targets, site.timezone, site.holiday_country)
        by_type = site.kind == "load"
        hist = pd.DataFrame({"v": known.to_numpy(dtype=float),
                             "minute": cal_hist["cal_minute_of_day"].to_numpy(),
                             "working": cal_hist["cal_is_working_day"].to_numpy() if by_type
                             else 0,
                             "day": known.index.tz_convert(site.timezone).normalize()})
        out = np.full((len(targets), len(levels)), np.nan)
        groups = {k: g.sort_values("day") for k, g in hist.groupby(["minute", "working"])}
        minutes = cal_tgt["cal_minute_of_day"].to_numpy()
        working = cal_tgt["cal_is_working_day"].to_numpy() if by_type else np.zeros(len(targets))
        for i, key in enumerate(zip(minutes, working, strict=True)):
            g = groups.get((int(key[0]), int(key[1])))
            if g is None:  # no comparable day: any day at that time
                g = hist[hist["minute"] == key[0]]
            if g.empty:
                continue
            recent = g["v"].to_numpy()[-self.days:]
            out[i] = np.quantile(recent, levels)
        if np.isnan(out).any():
            fill = np.quantile(known.to_numpy(dtype=float), levels)
            out = np.where(np.isnan(out), fill[None, :], out)
        return pd.DataFrame(np.sort(out, axis=1), index=targets,
                            columns=[f"q{q:g}" for q in levels])
