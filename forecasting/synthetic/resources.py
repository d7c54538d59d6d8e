"""Synthetic controllable resources behind each customer's meter (``resources`` table).

Synthetic: invented demand-response resources for the sample portfolio. Each load segment
lists resource templates (``segments.SEGMENTS[...].resources``); a customer gets 2-5
of them, sized as shares of its mean load and scaled so their total stays at or below 30 %
of it. Levels follow the portfolio contract: ``I`` responds within 5 minutes, ``II`` within
15, ``III`` is planned and needs at least 240 minutes' notice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecasting.contract import TABLES
from forecasting.synthetic.segments import SEGMENTS
from forecasting.synthetic.sites import SiteSpec

MAX_SHARE_OF_MEAN_LOAD = 0.30
LEVEL_MAX_RESPONSE_MINUTES = {"I": 5, "II": 15}
LEVEL_III_MIN_NOTICE_MINUTES = 240


@dataclass(frozen=True)
class ResourceTemplate:
    """A kind of controllable resource.

    ``share_of_load`` capacity as a fraction of the customer's mean load; minutes and
    CNY/MWh as named; ``follows_activity`` True when only the running part can be curtailed
    (lighting, HVAC, production) and False for storage and generators; ``thermal`` True when
    curtailment is followed by a rebound (HVAC, refrigeration); ``flexible_up`` True when it
    can also absorb energy for valley filling (storage, shiftable production).
    """

    key: str
    name: str
    level: str
    share_of_load: float
    response_minutes: int
    min_notice_minutes: int
    max_duration_minutes: int
    cost_cny_per_mwh: float
    requires_approval: bool
    follows_activity: bool = True
    thermal: bool = False
    flexible_up: bool = False

    def __post_init__(self) -> None:
        if self.level in LEVEL_MAX_RESPONSE_MINUTES:
            ok = self.response_minutes <= LEVEL_MAX_RESPONSE_MINUTES[self.level]
        else:
            ok = self.level == "III" and self.min_notice_minutes >= LEVEL_III_MIN_NOTICE_MINUTES
        if not ok:
            raise ValueError(f"resource template {self.key!r} contradicts level {self.level}")


TEMPLATES: dict[str, ResourceTemplate] = {
    t.key: t
    for t in (
        ResourceTemplate("lighting", "lighting dimming", "I", 0.03, 1, 0, 240, 150.0, False),
        ResourceTemplate(
            "battery_storage",
            "battery storage",
            "I",
            0.12,
            1,
            0,
            120,
            350.0,
            False,
            follows_activity=False,
            flexible_up=True,
        ),
        ResourceTemplate(
            "ev_chargers",
            "EV charger throttling",
            "I",
            0.04,
            2,
            0,
            240,
            200.0,
            False,
            flexible_up=True,
        ),
        ResourceTemplate(
            "escalators_and_lifts", "escalators and lifts", "I", 0.02, 5, 5, 120, 300.0, False
        ),
        ResourceTemplate(
            "hvac_setpoint",
            "HVAC setpoint raise",
            "II",
            0.08,
            10,
            15,
            180,
            250.0,
            False,
            thermal=True,
        ),
        ResourceTemplate(
            "chiller_plant",
            "chiller plant cycling",
            "II",
            0.10,
            15,
            30,
            120,
            400.0,
            False,
            thermal=True,
        ),
        ResourceTemplate(
            "air_compressors", "air compressors", "II", 0.08, 10, 15, 120, 600.0, False
        ),
        ResourceTemplate(
            "water_pumps",
            "water pumps (reservoir buffer)",
            "II",
            0.10,
            15,
            30,
            180,
            300.0,
            False,
            flexible_up=True,
        ),
        ResourceTemplate(
            "refrigeration_compressors",
            "refrigeration compressors",
            "II",
            0.12,
            10,
            15,
            90,
            500.0,
            False,
            thermal=True,
        ),
        ResourceTemplate(
            "backup_generator",
            "backup diesel generator",
            "II",
            0.08,
            15,
            60,
            240,
            1800.0,
            True,
            follows_activity=False,
        ),
        ResourceTemplate(
            "production_line",
            "production line rescheduling",
            "III",
            0.18,
            120,
            480,
            480,
            3000.0,
            True,
            flexible_up=True,
        ),
        ResourceTemplate(
            "electric_furnace",
            "induction furnace rescheduling",
            "III",
            0.25,
            60,
            240,
            360,
            2500.0,
            True,
            flexible_up=True,
        ),
        ResourceTemplate(
            "process_unit", "process unit turndown", "III", 0.12, 180, 1440, 480, 4000.0, True
        ),
        ResourceTemplate(
            "server_load_shift", "batch compute deferral", "III", 0.05, 60, 240, 240, 800.0, True
        ),
    )
}


@dataclass(frozen=True)
class Resource:
    """One resource of one customer; ``capacity_kw`` is the curtailable power in kW."""

    resource_id: str
    customer_id: str
    template: ResourceTemplate
    capacity_kw: float


def build_resources(
    rng: np.random.Generator, load_sites: list[SiteSpec], mean_load_kw: dict[str, float]
) -> list[Resource]:
    """2-5 resources per customer, total capacity <= 30 % of its mean load (kW)."""
    resources: list[Resource] = []
    for site in load_sites:
        options = SEGMENTS[site.segment].resources
        count = int(rng.integers(2, min(5, len(options)) + 1))
        chosen = [options[i] for i in sorted(rng.choice(len(options), count, replace=False))]
        mean_kw = mean_load_kw[site.customer_id]
        raw_kw = (
            np.array([TEMPLATES[k].share_of_load for k in chosen])
            * mean_kw
            * rng.uniform(0.7, 1.3, count)
        )
        raw_kw *= min(1.0, MAX_SHARE_OF_MEAN_LOAD * mean_kw / raw_kw.sum())
        capacities = np.maximum(np.floor(raw_kw / 10.0) * 10.0, 10.0)
        for j, (key, capacity_kw) in enumerate(zip(chosen, capacities, strict=True), start=1):
            resources.append(
                Resource(
                    f"{site.customer_id}_r{j}", site.customer_id, TEMPLATES[key], float(capacity_kw)
                )
            )
    return resources


def resources_frame(resources: list[Resource]) -> pd.DataFrame:
    """``resources`` table of the portfolio contract."""
    return pd.DataFrame(
        [
            {
                "resource_id": r.resource_id,
                "customer_id": r.customer_id,
                "name": r.template.name,
                "level": r.template.level,
                "capacity_kw": r.capacity_kw,
                "response_minutes": r.template.response_minutes,
                "min_notice_minutes": r.template.min_notice_minutes,
                "max_duration_minutes": r.template.max_duration_minutes,
                "cost_cny_per_mwh": r.template.cost_cny_per_mwh,
                "requires_approval": r.template.requires_approval,
            }
            for r in resources
        ],
        columns=[*TABLES["resources"].required, *TABLES["resources"].optional],
    )
