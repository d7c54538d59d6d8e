"""Emissions a demand response avoided: reduced energy times a grid emission factor.

Per settlement interval ``t`` of a customer's event (``reduction_kw = baseline - actual``,
mean kW over an interval of ``h`` hours, ``f(t)`` the grid emission factor in kg CO2/kWh):

- ``reduced_kwh(t) = max(reduction_kw(t), 0) * h``: energy not drawn from the grid;
- ``increased_kwh(t) = max(-reduction_kw(t), 0) * h``: energy drawn above the baseline
  (valley filling, where it is what was asked, or a rebound after a reduction);
- ``avoided_co2_kg(t) = reduced_kwh(t) * f(t)``, ``added_co2_kg(t) = increased_kwh(t) * f(t)``;
- ``net_avoided_co2_kg = avoided_co2_kg - added_co2_kg``.

Only a positive reduction avoids emissions; an increase of load counts as added emissions at
the same factor, it is never netted away silently: both are reported, and the net beside
them. A valley-filling event therefore shows ``added_co2_kg`` > 0 at the average factor;
where the absorbed energy is surplus renewable generation its marginal factor is lower than
the average: give an hourly profile (below) to account for that. Intervals without readings
count nothing. Events, customers and months add up the interval values.

Where the factor ``f(t)`` comes from, per site, first match wins:

1. an explicit factor (a request's ``emission_factor_kg_per_kwh``, ``vpp measure
   --emission-factor``): every interval;
2. ``emission_factors.csv`` rows of that ``site_id``, then rows without a site (the whole
   portfolio); within each, a ``timestamp`` row (tz-aware interval start; it holds until
   the next timestamp, at most the profile's step) before an ``hour`` row (local hour of
   day 0-23 in the site's timezone) before a row with neither (a constant: a per-site
   override, or the province's factor for the whole portfolio);
3. the built-in table's factor of a grid region or province (``grid_region``);
4. the national average (default).

A customer whose load sites resolve to different factors gets their mean (its reduction is
metered as the sum of its sites). ``emission_factors.csv`` is an optional extension of the
portfolio format (``../shared/DATA_FORMAT.md`` allows added tables): columns
``kg_co2_per_kwh`` (required, 0 < f <= ``MAX_FACTOR_KG_PER_KWH``), optional ``site_id``,
and at most one of ``timestamp`` / ``hour``; CSV, gzipped CSV or Parquet like the others.

Default factors: the national, regional (grid) electricity average CO2 emission factors for
2023 published by the Ministry of Ecology and Environment (MEE) and the National Bureau of
Statistics of China (announcement on the 2023 electricity CO2 emission factors, released at
the turn of 2025/2026 [1]_, [2]_): national 0.5306 kg CO2/kWh (2022: 0.5366, 2021: 0.5568);
North 0.6361, Northeast 0.5122, East 0.5500, Central 0.5271, Northwest 0.5543, South
0.4042, Southwest 0.2472 kg CO2/kWh. They are location-based averages of electricity
consumed (no green-power contracts taken off) and annual, not hourly. The 0.5703 t/MWh often
quoted is a different figure: the "national grid average emission factor" MEE set for the
power sector's 2022-2025 emission reports (2023), not the consumption average. Provinces map
to their grid region as the announcement groups them (Inner Mongolia, split between the
North and Northeast grids, is mapped to North China); give the province's own published
factor as a constant ``emission_factors.csv`` row where it matters.

References
----------
.. [1] MEE and NBS, 关于发布2023年电力二氧化碳排放因子的公告 (announcement of the 2023
   electricity CO2 emission factors), as reported by Guangming Daily, "数据显示:我国发电能源
   结构持续优化" (163.com/dy/article/KIQVBKCG05567I2C), and China Electric Power News,
   2026-01-15 ("全国电力平均二氧化碳排放因子持续下降").
.. [2] MEE and NBS, 关于发布2022年电力二氧化碳排放因子的公告 (2024-12-20) and 关于发布2021年
   电力二氧化碳排放因子的公告 (announcement 2024 No. 12, 2024-04-12): same method and sources.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from forecasting.errors import (
    DataError,
    ImpossibleValueError,
    MissingColumnsError,
    UnknownValueError,
)

MAX_FACTOR_KG_PER_KWH = 2.0  # above any grid's average (pure lignite ~1.2): a unit error
FACTOR_YEAR = 2023
NATIONAL_KG_PER_KWH = 0.5306
SOURCE = "MEE/NBS electricity CO2 emission factors 2023"
REGION_KG_PER_KWH = {
    "north_china": 0.6361, "northeast_china": 0.5122, "east_china": 0.5500,
    "central_china": 0.5271, "northwest_china": 0.5543, "south_china": 0.4042,
    "southwest_china": 0.2472,
}
PROVINCE_REGION = {
    **dict.fromkeys(("beijing", "tianjin", "hebei", "shanxi", "shandong", "inner_mongolia"),
                    "north_china"),
    **dict.fromkeys(("liaoning", "jilin", "heilongjiang"), "northeast_china"),
    **dict.fromkeys(("shanghai", "jiangsu", "zhejiang", "anhui", "fujian"), "east_china"),
    **dict.fromkeys(("henan", "hubei", "hunan", "jiangxi"), "central_china"),
    **dict.fromkeys(("shaanxi", "gansu", "qinghai", "ningxia", "xinjiang"), "northwest_china"),
    **dict.fromkeys(("guangdong", "guangxi", "yunnan", "guizhou", "hainan"), "south_china"),
    **dict.fromkeys(("sichuan", "chongqing", "tibet"), "southwest_china"),
}
TABLE_NAME = "emission_factors"
INTERVAL_COLUMNS = ("emission_factor_kg_per_kwh", "reduced_kwh", "increased_kwh",
                    "avoided_co2_kg", "added_co2_kg")
TOTAL_COLUMNS = ("reduced_kwh", "increased_kwh", "avoided_co2_kg", "added_co2_kg",
                 "net_avoided_co2_kg")


def check_factor(value, what: str = "emission factor") -> float:
    """``value`` as a factor in kg CO2/kWh: finite, > 0 and <= ``MAX_FACTOR_KG_PER_KWH``."""
    try:
        factor = float(value)
    except (TypeError, ValueError):
        factor = float("nan")
    if not (np.isfinite(factor) and 0 < factor <= MAX_FACTOR_KG_PER_KWH):
        raise ImpossibleValueError(
            f"{what} {value!r} kg CO2/kWh must be a number > 0 and <= "
            f"{MAX_FACTOR_KG_PER_KWH:g} (grid averages are 0.1-1.0; is it in g/kWh or "
            "t/kWh instead of kg/kWh?)")
    return factor


def region_factor(grid_region: str) -> tuple[float, str]:
    """The built-in factor of a grid region or province (``east_china``, ``jiangsu``, ...)."""
    key = grid_region.strip().lower().replace(" ", "_").replace("-", "_")
    region = PROVINCE_REGION.get(key, key)
    if region not in REGION_KG_PER_KWH:
        raise UnknownValueError(
            f"unknown grid region or province {grid_region!r}, expected one of "
            f"{', '.join(REGION_KG_PER_KWH)} or a province ({', '.join(sorted(PROVINCE_REGION))})")
    via = f" ({key})" if key != region else ""
    return REGION_KG_PER_KWH[region], f"{SOURCE}, {region} grid average{via}"


def validate_emission_factors(raw: pd.DataFrame, source: str) -> pd.DataFrame:
    """``emission_factors.csv`` rows checked (module doc): ``site_id`` ('' = every site),
    ``kind`` (``timestamp``, ``hour`` or ``constant``), ``timestamp`` (UTC), ``hour``,
    ``kg_co2_per_kwh``."""
    from forecasting.validation import parse_timestamps

    if "kg_co2_per_kwh" not in raw.columns:
        raise MissingColumnsError(f"{source}: missing column 'kg_co2_per_kwh' (kg CO2 per "
                                  "kWh); present: " + ", ".join(map(str, raw.columns)),
                                  ["kg_co2_per_kwh"])
    if {"timestamp", "hour"} <= set(raw.columns):
        raise DataError(f"{source}: give either a timestamp or an hour column, not both "
                        "(one profile per file)")
    values = pd.to_numeric(raw["kg_co2_per_kwh"], errors="coerce")
    bad = ~(np.isfinite(values) & (values > 0) & (values <= MAX_FACTOR_KG_PER_KWH))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        check_factor(raw["kg_co2_per_kwh"].iloc[row], f"{source} row {row}: kg_co2_per_kwh")
    out = pd.DataFrame({"site_id": raw["site_id"].astype("string").fillna("").str.strip()
                        if "site_id" in raw else "", "kg_co2_per_kwh": values.astype(float)})
    out["kind"], out["hour"] = "constant", -1
    out["timestamp"] = pd.Series(pd.NaT, index=out.index, dtype="datetime64[ns, UTC]")
    if "timestamp" in raw:
        stamps = parse_timestamps(raw["timestamp"], source, "timestamp", allow_missing=True)
        out.loc[stamps.notna(), "kind"] = "timestamp"
        out["timestamp"] = stamps
    if "hour" in raw:
        hours = pd.to_numeric(raw["hour"], errors="coerce")
        given = raw["hour"].notna()
        wrong = given & ~(hours.isin(range(24)))
        if wrong.any():
            row = int(np.flatnonzero(wrong.to_numpy())[0])
            raise ImpossibleValueError(f"{source} row {row}: hour {raw['hour'].iloc[row]!r} "
                                       "must be a local hour of day 0..23")
        out.loc[given, "kind"] = "hour"
        out.loc[given, "hour"] = hours[given].astype(int)
    key = ["site_id", "kind", "hour", "timestamp"]
    dupes = out.duplicated(key)
    if dupes.any():
        row = int(np.flatnonzero(dupes.to_numpy())[0])
        raise DataError(f"{source} row {row}: a second factor for the same site and time; "
                        "keep one")
    return out


def read_emission_factors(directory: Path | str) -> pd.DataFrame | None:
    """The portfolio's optional ``emission_factors`` table, checked; None when absent."""
    from forecasting.io import find_table, read_table

    path = find_table(Path(directory), TABLE_NAME)
    return None if path is None else validate_emission_factors(read_table(path), str(path))


@dataclass(frozen=True)
class EmissionFactors:
    """Where each interval's factor comes from (precedence in the module doc).

    ``table``: ``validate_emission_factors`` output (or None); ``grid_region``: a key of the
    built-in table (region or province); ``override_kg_per_kwh``: beats everything.
    """

    table: pd.DataFrame | None = None
    grid_region: str | None = None
    override_kg_per_kwh: float | None = None
    table_source: str = f"{TABLE_NAME}.csv"
    fallback: tuple[float, str] = field(init=False)

    def __post_init__(self):
        if self.override_kg_per_kwh is not None:
            check_factor(self.override_kg_per_kwh)
        if self.grid_region:
            fallback = region_factor(self.grid_region)
        else:
            fallback = (NATIONAL_KG_PER_KWH, f"{SOURCE}, national average")
        object.__setattr__(self, "fallback", fallback)

    def site_factors(self, index: pd.DatetimeIndex, site_id: str | None, timezone: str
                     ) -> tuple[np.ndarray, np.ndarray]:
        """Factor (kg/kWh) and its source label per interval start of ``index`` for a site."""
        n = len(index)
        if self.override_kg_per_kwh is not None:
            return (np.full(n, float(self.override_kg_per_kwh)),
                    np.full(n, "given explicitly", dtype=object))
        factor = np.full(n, np.nan)
        label = np.full(n, "", dtype=object)
        rows = self.table
        scopes = () if rows is None or rows.empty else ((site_id,) if site_id else ()) + ("",)
        for scope in scopes:
            mine = rows[rows["site_id"] == scope]
            where = f"site {scope}" if scope else "portfolio"
            for kind in ("timestamp", "hour", "constant"):
                part = mine[mine["kind"] == kind]
                if part.empty:
                    continue
                values = _lookup(part, kind, index, timezone)
                fill = np.isnan(factor) & ~np.isnan(values)
                factor[fill] = values[fill]
                label[fill] = f"{self.table_source} ({where}, {kind})"
        rest = np.isnan(factor)
        factor[rest], label[rest] = self.fallback
        return factor, label

    def customer_factors(self, index: pd.DatetimeIndex, site_ids: list[str], timezone: str
                         ) -> tuple[pd.Series, str]:
        """The customer's factor per interval (mean over its sites) and a source summary."""
        per_site = [self.site_factors(index, s, timezone) for s in (site_ids or [None])]
        factor = np.mean([f for f, _ in per_site], axis=0)
        labels = pd.Series(np.concatenate([lab for _, lab in per_site]))
        return pd.Series(factor, index=index, name="emission_factor_kg_per_kwh"), _summary(
            labels, len(per_site))


def _lookup(part: pd.DataFrame, kind: str, index: pd.DatetimeIndex, timezone: str
            ) -> np.ndarray:
    if kind == "constant":
        return np.full(len(index), float(part["kg_co2_per_kwh"].iloc[0]))
    if kind == "hour":
        by_hour = part.set_index("hour")["kg_co2_per_kwh"]
        hours = index.tz_convert(timezone).hour
        return by_hour.reindex(hours).to_numpy(dtype=float)
    profile = part.set_index("timestamp")["kg_co2_per_kwh"].sort_index()
    steps = np.diff(profile.index.asi8)
    step = pd.Timedelta(int(steps.min()), unit="ns") if len(steps) else pd.Timedelta(hours=1)
    on = profile.reindex(index.tz_convert("UTC"), method="ffill",
                         tolerance=step - pd.Timedelta(1, unit="ns"))
    return on.to_numpy(dtype=float)


def _summary(labels: pd.Series, n_sites: int) -> str:
    counts = labels.value_counts()
    if len(counts) == 1:
        return str(counts.index[0])
    total, what = len(labels), "site-intervals" if n_sites > 1 else "intervals"
    return "; ".join(f"{lab} ({n / total:.0%} of {what})" for lab, n in counts.items())


def interval_emissions(reduction_kw: pd.Series, factor_kg_per_kwh, interval_minutes: float
                       ) -> pd.DataFrame:
    """Per interval: the factor, reduced/increased kWh, avoided/added kg CO2 (module doc).

    ``reduction_kw``: baseline - actual, mean kW per interval (NaN: not measured, counts 0);
    ``factor_kg_per_kwh``: one value or one per interval; ``interval_minutes``: the width.
    """
    if not (np.isfinite(interval_minutes) and interval_minutes > 0):
        raise ImpossibleValueError(f"interval_minutes {interval_minutes!r} must be > 0")
    reduction = pd.Series(reduction_kw, dtype="float64")
    factor = pd.Series(np.broadcast_to(np.asarray(factor_kg_per_kwh, dtype=float),
                                       reduction.shape), index=reduction.index)
    if not (np.isfinite(factor) & (factor > 0)).all():
        raise ImpossibleValueError("emission factors must be finite and > 0 kg CO2/kWh")
    energy = reduction.fillna(0.0) * (interval_minutes / 60.0)
    reduced, increased = energy.clip(lower=0.0) + 0.0, (-energy).clip(lower=0.0) + 0.0
    return pd.DataFrame({"emission_factor_kg_per_kwh": factor, "reduced_kwh": reduced,
                         "increased_kwh": increased, "avoided_co2_kg": reduced * factor,
                         "added_co2_kg": increased * factor}, index=reduction.index)


def emission_totals(rows: pd.DataFrame) -> dict[str, float]:
    """Sums of ``interval_emissions`` rows (or of earlier totals) with the net avoided kg."""
    totals = {c: float(rows[c].sum()) for c in TOTAL_COLUMNS[:4]}
    totals["net_avoided_co2_kg"] = totals["avoided_co2_kg"] - totals["added_co2_kg"]
    return totals


def mean_factor(rows: pd.DataFrame, measured: pd.Series | None = None) -> float:
    """Mean factor (kg/kWh) over the measured intervals (all when ``measured`` is None)."""
    factor = rows["emission_factor_kg_per_kwh"]
    if measured is not None and measured.any():
        factor = factor[measured.to_numpy()]
    return float(factor.mean())


def monthly_emissions(intervals: pd.DataFrame, timezone: str) -> pd.DataFrame:
    """``interval_emissions`` columns summed per local month and customer.

    ``intervals``: rows with ``timestamp`` (tz-aware), ``customer_id`` and the columns of
    ``interval_emissions`` (e.g. several ``Measurement.intervals`` concatenated).
    """
    stamps = pd.DatetimeIndex(intervals["timestamp"])
    if stamps.tz is None:
        raise DataError("intervals: naive timestamps; give them tz-aware (UTC)")
    month = stamps.tz_convert(timezone).tz_localize(None).to_period("M").astype(str)
    grouped = intervals.assign(month=month).groupby(["month", "customer_id"])
    out = grouped[list(TOTAL_COLUMNS[:4])].sum()
    out["net_avoided_co2_kg"] = out["avoided_co2_kg"] - out["added_co2_kg"]
    return out.reset_index()
