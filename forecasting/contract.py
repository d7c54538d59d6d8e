"""The portfolio data contract (../shared/DATA_FORMAT.md, version 1) declared as data.

Each table names its required and optional columns; validation (``forecasting.validation``)
and the reader (``forecasting.io``) work from these declarations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

KINDS = ("load", "pv", "wind")
VALUE_COLUMN = {"load": "load_kw", "pv": "pv_power_kw", "wind": "wind_power_kw"}
RESOLUTIONS_MINUTES = (5, 15, 30, 60)
MARKETS = ("day_ahead", "real_time")
EVENT_TYPES = (
    "annual",
    "day_ahead",
    "real_time",
    "peak",
    "reserve",
    "peak_shaving",
    "valley_filling",
)
LEVELS = ("I", "II", "III")
WEATHER_COLUMNS = (
    "temp_air_c",
    "relative_humidity_pct",
    "pressure_hpa",
    "cloud_cover_frac",
    "ghi_wm2",
    "dni_wm2",
    "dhi_wm2",
    "precipitation_mm",
    "wind_speed_10m_mps",
    "wind_dir_10m_deg",
    "wind_speed_100m_mps",
    "wind_dir_100m_deg",
)
# Physical ranges of weather columns: values outside are unit mistakes (e.g. kelvin, J/m2, %).
WEATHER_RANGES = {
    "temp_air_c": (-60.0, 60.0),
    "relative_humidity_pct": (0.0, 100.5),
    "pressure_hpa": (500.0, 1100.0),
    "cloud_cover_frac": (0.0, 1.0),
    "ghi_wm2": (0.0, 1500.0),
    "dni_wm2": (0.0, 1500.0),
    "dhi_wm2": (0.0, 1000.0),
    "precipitation_mm": (0.0, 500.0),
    "wind_speed_10m_mps": (0.0, 80.0),
    "wind_dir_10m_deg": (0.0, 360.0),
    "wind_speed_100m_mps": (0.0, 100.0),
    "wind_dir_100m_deg": (0.0, 360.0),
}
# Measured power may exceed nameplate a little (metering, over-sized inverters); beyond this
# factor it is a unit mistake (W instead of kW) or a wrong capacity.
CAPACITY_TOLERANCE = 1.5


@dataclass(frozen=True)
class TableSpec:
    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    timestamp_columns: tuple[str, ...] = ()
    required_file: bool = False
    key: tuple[str, ...] = field(default=())


TABLES: dict[str, TableSpec] = {
    "sites": TableSpec(
        "sites",
        required=("site_id", "kind", "timezone"),
        optional=(
            "latitude_deg",
            "longitude_deg",
            "capacity_kw",
            "customer_id",
            "tilt_deg",
            "azimuth_deg",
            "hub_height_m",
            "turbine_type",
            "holiday_country",
        ),
        required_file=True,
        key=("site_id",),
    ),
    "measurements": TableSpec(
        "measurements",
        required=("site_id", "timestamp"),
        optional=tuple(VALUE_COLUMN.values()),
        timestamp_columns=("timestamp",),
        required_file=True,
        key=("site_id", "timestamp"),
    ),
    "weather": TableSpec(
        "weather",
        required=("site_id", "timestamp"),
        optional=("issue_time", *WEATHER_COLUMNS),
        timestamp_columns=("timestamp", "issue_time"),
        key=("site_id", "timestamp", "issue_time"),
    ),
    "prices": TableSpec(
        "prices",
        required=("timestamp",),
        optional=("issue_time", "market"),
        timestamp_columns=("timestamp", "issue_time"),
        key=("market", "timestamp", "issue_time"),
    ),
    "events": TableSpec(
        "events",
        required=(
            "event_id",
            "customer_id",
            "event_type",
            "notice_time",
            "start",
            "end",
            "target_kw",
        ),
        optional=("compensation_cny_per_mw", "actual_kw"),
        timestamp_columns=("notice_time", "start", "end"),
        key=("event_id", "customer_id"),
    ),
    "resources": TableSpec(
        "resources",
        required=(
            "resource_id",
            "customer_id",
            "name",
            "level",
            "capacity_kw",
            "response_minutes",
            "min_notice_minutes",
            "max_duration_minutes",
        ),
        optional=("cost_cny_per_mwh", "requires_approval"),
        key=("resource_id",),
    ),
}
