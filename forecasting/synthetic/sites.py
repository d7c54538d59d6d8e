"""Site catalogue of the synthetic sample portfolio: customers, PV plants, wind farms.

Synthetic: every site, customer and number here is invented for demonstration and tests.
Sites lie around Nanjing, Jiangsu (32.0 N, 118.8 E) in ``Asia/Shanghai`` with Chinese
holidays. Load sites follow *segments* (2-shift factory, mall, data centre, ...) declared in
``forecasting.synthetic.segments``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecasting.synthetic.segments import SEGMENTS

REGION_LATITUDE_DEG = 32.0
REGION_LONGITUDE_DEG = 118.8
TIMEZONE = "Asia/Shanghai"
HOLIDAY_COUNTRY = "CN"

# (segment, description, behind-the-meter PV as a fraction of peak load) of c01, c02, ...
CUSTOMERS: tuple[tuple[str, str, float], ...] = (
    ("factory_2shift", "electronics assembly", 0.0),
    ("factory_3shift", "auto parts", 0.0),
    ("process_plant", "chemical plant", 0.0),
    ("office", "office tower", 0.0),
    ("mall", "shopping mall", 0.0),
    ("cold_storage", "cold storage warehouse", 0.0),
    ("data_centre", "data centre", 0.0),
    ("factory_2shift", "textile mill with rooftop PV", 0.4),
    ("factory_3shift", "semiconductor packaging", 0.0),
    ("foundry", "foundry with induction furnaces", 0.0),
    ("office", "government office with rooftop PV", 0.15),
    ("hospital", "hospital", 0.0),
    ("mall", "shopping mall", 0.0),
    ("water_treatment", "water treatment works", 0.0),
    ("factory_2shift", "furniture factory", 0.0),
    ("process_plant", "float glass plant", 0.0),
    ("logistics", "logistics hub with rooftop PV", 0.8),
    ("hotel", "hotel", 0.0),
    ("factory_3shift", "pharmaceuticals", 0.0),
    ("campus", "university campus", 0.0),
)

TURBINE_TYPES: tuple[tuple[str, float], ...] = (
    # (turbine_type text, rated wind speed m/s of its generic power curve)
    ("generic 2.5 MW, 121 m rotor, IEC class III", 11.0),
    ("generic 3.2 MW, 141 m rotor, IEC class S", 11.5),
    ("generic 2.0 MW, 115 m rotor, IEC class III", 12.0),
)


@dataclass(frozen=True)
class SiteSpec:
    """One synthetic site with the parameters the generator needs beyond ``sites.csv``.

    Units: degrees, kW, metres. ``dc_ac_ratio`` is the PV array's DC nameplate over the
    inverter's AC ``capacity_kw``; ``btm_pv_kw`` the AC nameplate of behind-the-meter PV of a
    load site; ``exposure`` scales the site's wind speed; ``shutdown_days`` the days a
    factory stays shut after Spring Festival; ``rated_speed_mps`` the turbine's rated speed.
    """

    site_id: str
    kind: str
    latitude_deg: float
    longitude_deg: float
    capacity_kw: float
    customer_id: str | None = None
    segment: str | None = None
    description: str = ""
    tilt_deg: float | None = None
    azimuth_deg: float | None = None
    hub_height_m: float | None = None
    turbine_type: str | None = None
    rated_speed_mps: float | None = None
    dc_ac_ratio: float | None = None
    btm_pv_kw: float = 0.0
    exposure: float = 1.0
    shutdown_days: int = 0
    temp_offset_c: float = 0.0


def _round_to(x: float, step: float) -> float:
    return float(np.round(x / step) * step)


def _location(rng: np.random.Generator, spread_deg: float) -> tuple[float, float]:
    lat = REGION_LATITUDE_DEG + rng.uniform(-spread_deg, spread_deg)
    lon = REGION_LONGITUDE_DEG + rng.uniform(-spread_deg, spread_deg) * 1.2
    return round(float(lat), 4), round(float(lon), 4)


def build_sites(
    rng: np.random.Generator, n_customers: int, n_pv: int, n_wind: int
) -> list[SiteSpec]:
    """Invent ``n_customers`` load sites (cycling through ``CUSTOMERS``), ``n_pv`` PV plants
    and ``n_wind`` wind farms around Nanjing."""
    for name, value in (("n_customers", n_customers), ("n_pv", n_pv), ("n_wind", n_wind)):
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    if n_customers + n_pv + n_wind == 0:
        raise ValueError("the portfolio needs at least one site")
    sites: list[SiteSpec] = []
    for i in range(n_customers):
        segment_name, description, btm_fraction = CUSTOMERS[i % len(CUSTOMERS)]
        segment = SEGMENTS[segment_name]
        customer_id = f"c{i + 1:02d}"
        capacity_kw = _round_to(rng.uniform(*segment.capacity_kw), 50)
        lat, lon = _location(rng, 0.35)
        low, high = segment.shutdown_days
        sites.append(
            SiteSpec(
                site_id=f"load_{customer_id}",
                kind="load",
                latitude_deg=lat,
                longitude_deg=lon,
                capacity_kw=capacity_kw,
                customer_id=customer_id,
                segment=segment_name,
                description=description,
                btm_pv_kw=_round_to(btm_fraction * segment.peak_fraction * capacity_kw, 10),
                exposure=float(rng.uniform(0.85, 1.0)),
                shutdown_days=int(rng.integers(low, high + 1)) if high else 0,
                temp_offset_c=float(rng.uniform(0.0, 0.8)),  # urban heat island
            )
        )
    for i in range(n_pv):
        lat, lon = _location(rng, 0.5)
        sites.append(
            SiteSpec(
                site_id=f"pv_{i + 1:02d}",
                kind="pv",
                latitude_deg=lat,
                longitude_deg=lon,
                capacity_kw=_round_to(rng.uniform(4000, 40000), 100),
                description="ground-mounted PV plant" if i % 2 == 0 else "rooftop PV plant",
                tilt_deg=_round_to(rng.uniform(15, 30), 1),
                azimuth_deg=_round_to(rng.uniform(150, 210), 1),
                dc_ac_ratio=round(float(rng.uniform(1.05, 1.25)), 2),
                exposure=float(rng.uniform(0.9, 1.05)),
                temp_offset_c=float(rng.uniform(-0.5, 0.3)),
            )
        )
    for i in range(n_wind):
        lat, lon = _location(rng, 0.6)
        turbine_type, rated_speed = TURBINE_TYPES[i % len(TURBINE_TYPES)]
        sites.append(
            SiteSpec(
                site_id=f"wind_{i + 1:02d}",
                kind="wind",
                latitude_deg=lat,
                longitude_deg=lon,
                capacity_kw=_round_to(rng.uniform(40000, 120000), 1000),
                description="onshore wind farm",
                hub_height_m=_round_to(rng.uniform(80, 110), 5),
                turbine_type=turbine_type,
                rated_speed_mps=rated_speed,
                exposure=float(rng.uniform(1.05, 1.18)),
                temp_offset_c=float(rng.uniform(-1.0, -0.2)),  # hills
            )
        )
    return sites


def sites_frame(sites: list[SiteSpec]) -> pd.DataFrame:
    """``sites`` table of the portfolio contract, plus the synthetic ``segment`` column."""
    rows = [
        {
            "site_id": s.site_id,
            "kind": s.kind,
            "timezone": TIMEZONE,
            "latitude_deg": s.latitude_deg,
            "longitude_deg": s.longitude_deg,
            "capacity_kw": s.capacity_kw,
            "customer_id": s.customer_id,
            "tilt_deg": s.tilt_deg,
            "azimuth_deg": s.azimuth_deg,
            "hub_height_m": s.hub_height_m,
            "turbine_type": s.turbine_type,
            "holiday_country": HOLIDAY_COUNTRY,
            "segment": s.segment or s.kind,
        }
        for s in sites
    ]
    frame = pd.DataFrame(rows)
    for column in ("tilt_deg", "azimuth_deg", "hub_height_m", "capacity_kw"):
        frame[column] = frame[column].astype(float)
    return frame
