"""Load segments of the synthetic sample portfolio: how each kind of customer uses electricity.

Synthetic: invented for demonstration and tests. A segment (2-shift factory, mall, data
centre, ...) declares its daily shapes as data: ``(local hour, fraction of peak load)``
anchors, plus its calendar, weather sensitivity, noise and controllable resources. The
site catalogue (``forecasting.synthetic.sites``) assigns customers to segments.
"""

from __future__ import annotations

from dataclasses import dataclass

Profile = tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class LoadSegment:
    """How one kind of customer uses electricity.

    Attributes
    ----------
    name : segment id, written to ``sites.csv`` column ``segment``.
    capacity_kw : range of contracted capacity, kW.
    peak_fraction : typical peak load / contracted capacity (weather-independent part).
    working_profile : daily shape on working days, (local hour, fraction of peak) anchors.
    rest_profile : shape on weekends and holidays when ``all_days`` is False.
    all_days : operates every day with ``working_profile`` scaled by ``weekend_level`` and
        ``holiday_level`` (malls, hotels, continuous plants) instead of a rest profile.
    weekend_level, holiday_level : multipliers on weekends and public holidays.
    shutdown_days : (min, max) days after Spring Festival a factory stays shut; (0, 0): none.
    festival_level : multiplier during the Spring Festival holidays when not shut down.
    cooling_per_c : extra load per degC of (thermally lagged) air temperature above 24 C,
        fraction of peak, scaled by how much of the site is in operation.
    heating_per_c : the same per degC below 12 C.
    noise_fraction : std of the autocorrelated 15-minute noise, fraction of load.
    growth_per_year : load growth, fraction per year.
    school_vacations : rest profile in the winter (around Spring Festival) and summer
        (10 July - 31 August) vacations.
    resources : names of controllable-resource templates (``resources``).
    """

    name: str
    capacity_kw: tuple[float, float]
    peak_fraction: float
    working_profile: Profile
    rest_profile: Profile = ()
    all_days: bool = False
    weekend_level: float = 1.0
    holiday_level: float = 1.0
    shutdown_days: tuple[int, int] = (0, 0)
    festival_level: float = 1.0
    cooling_per_c: float = 0.01
    heating_per_c: float = 0.005
    noise_fraction: float = 0.03
    growth_per_year: float = 0.02
    school_vacations: bool = False
    resources: tuple[str, ...] = ()


_FLAT_NIGHT: Profile = ((0, 0.22), (8, 0.22), (9, 0.28), (17, 0.28), (18, 0.22), (24, 0.22))

SEGMENTS: dict[str, LoadSegment] = {
    s.name: s
    for s in (
        LoadSegment(
            "factory_2shift",
            (2000, 8000),
            0.78,
            (
                (0, 0.22),
                (6.5, 0.22),
                (7.5, 0.8),
                (8, 0.95),
                (11.5, 0.95),
                (12, 0.75),
                (12.75, 0.95),
                (15.75, 0.95),
                (16, 0.8),
                (16.5, 0.93),
                (20, 0.9),
                (23.5, 0.88),
                (24, 0.22),
            ),
            _FLAT_NIGHT,
            shutdown_days=(7, 20),
            cooling_per_c=0.012,
            heating_per_c=0.004,
            resources=(
                "lighting",
                "air_compressors",
                "hvac_setpoint",
                "production_line",
                "battery_storage",
            ),
        ),
        LoadSegment(
            "factory_3shift",
            (5000, 20000),
            0.82,
            (
                (0, 0.78),
                (0.5, 0.92),
                (7.75, 0.92),
                (8, 0.8),
                (8.5, 0.95),
                (12, 0.95),
                (12.5, 0.85),
                (13, 0.95),
                (15.75, 0.95),
                (16, 0.8),
                (16.5, 0.93),
                (23.75, 0.92),
                (24, 0.78),
            ),
            ((0, 0.55), (24, 0.55)),
            shutdown_days=(7, 14),
            cooling_per_c=0.008,
            heating_per_c=0.003,
            resources=(
                "lighting",
                "air_compressors",
                "production_line",
                "chiller_plant",
                "process_unit",
            ),
        ),
        LoadSegment(
            "process_plant",
            (10000, 40000),
            0.85,
            ((0, 0.9), (12, 0.93), (24, 0.9)),
            all_days=True,
            festival_level=0.92,
            cooling_per_c=0.004,
            heating_per_c=0.001,
            noise_fraction=0.015,
            resources=("process_unit", "water_pumps", "lighting", "backup_generator"),
        ),
        LoadSegment(
            "office",
            (800, 3000),
            0.55,
            (
                (0, 0.2),
                (6.5, 0.22),
                (8, 0.7),
                (9, 0.95),
                (11.5, 0.95),
                (12, 0.85),
                (13.5, 0.95),
                (17.5, 0.9),
                (18.5, 0.55),
                (20, 0.35),
                (22, 0.22),
                (24, 0.2),
            ),
            ((0, 0.2), (8, 0.2), (9.5, 0.3), (17, 0.3), (18, 0.2), (24, 0.2)),
            holiday_level=0.9,
            cooling_per_c=0.035,
            heating_per_c=0.03,
            noise_fraction=0.025,
            resources=(
                "lighting",
                "hvac_setpoint",
                "chiller_plant",
                "ev_chargers",
                "battery_storage",
            ),
        ),
        LoadSegment(
            "mall",
            (2000, 6000),
            0.55,
            (
                (0, 0.15),
                (8, 0.2),
                (9.5, 0.6),
                (10, 0.9),
                (13, 0.95),
                (19, 1.0),
                (21.5, 0.95),
                (22.25, 0.35),
                (23, 0.18),
                (24, 0.15),
            ),
            all_days=True,
            weekend_level=1.12,
            holiday_level=1.18,
            festival_level=0.85,
            cooling_per_c=0.04,
            heating_per_c=0.025,
            noise_fraction=0.025,
            resources=("lighting", "hvac_setpoint", "escalators_and_lifts", "chiller_plant"),
        ),
        LoadSegment(
            "cold_storage",
            (600, 2000),
            0.6,
            ((0, 0.7), (7, 0.7), (8, 0.85), (18, 0.85), (19, 0.72), (24, 0.7)),
            all_days=True,
            weekend_level=0.95,
            holiday_level=0.9,
            cooling_per_c=0.025,
            heating_per_c=0.0,
            noise_fraction=0.04,
            resources=("refrigeration_compressors", "lighting", "battery_storage"),
        ),
        LoadSegment(
            "data_centre",
            (5000, 15000),
            0.72,
            ((0, 0.8), (24, 0.8)),
            all_days=True,
            cooling_per_c=0.008,
            heating_per_c=0.0,
            noise_fraction=0.008,
            growth_per_year=0.08,
            resources=("battery_storage", "chiller_plant", "backup_generator", "server_load_shift"),
        ),
        LoadSegment(
            "foundry",
            (4000, 12000),
            0.75,
            (
                (0, 0.95),
                (7.5, 0.95),
                (8.5, 0.5),
                (11, 0.5),
                (11.5, 0.8),
                (13, 0.8),
                (13.5, 0.55),
                (16.5, 0.55),
                (17.5, 0.32),
                (20.5, 0.32),
                (21.5, 0.9),
                (24, 0.95),
            ),
            ((0, 0.3), (24, 0.3)),
            shutdown_days=(10, 20),
            cooling_per_c=0.003,
            heating_per_c=0.001,
            noise_fraction=0.06,
            resources=("electric_furnace", "air_compressors", "lighting", "production_line"),
        ),
        LoadSegment(
            "hospital",
            (1500, 4000),
            0.6,
            (
                (0, 0.45),
                (7, 0.55),
                (8.5, 0.9),
                (11.5, 0.95),
                (12.5, 0.85),
                (17, 0.85),
                (19, 0.7),
                (22, 0.5),
                (24, 0.45),
            ),
            all_days=True,
            weekend_level=0.85,
            holiday_level=0.8,
            cooling_per_c=0.03,
            heating_per_c=0.025,
            noise_fraction=0.02,
            resources=("hvac_setpoint", "lighting", "backup_generator"),
        ),
        LoadSegment(
            "water_treatment",
            (800, 2500),
            0.75,
            (
                (0, 0.7),
                (5, 0.65),
                (7, 0.9),
                (9, 0.95),
                (12, 0.85),
                (18, 0.95),
                (21, 0.9),
                (24, 0.7),
            ),
            all_days=True,
            weekend_level=0.97,
            cooling_per_c=0.004,
            heating_per_c=0.0,
            resources=("water_pumps", "lighting", "backup_generator", "battery_storage"),
        ),
        LoadSegment(
            "logistics",
            (500, 1500),
            0.7,
            (
                (0, 0.3),
                (6, 0.3),
                (8, 0.8),
                (12, 0.8),
                (13, 0.7),
                (18, 0.85),
                (22, 0.6),
                (23, 0.35),
                (24, 0.3),
            ),
            all_days=True,
            weekend_level=0.9,
            holiday_level=0.7,
            shutdown_days=(5, 8),
            cooling_per_c=0.01,
            heating_per_c=0.005,
            noise_fraction=0.05,
            resources=("lighting", "ev_chargers", "hvac_setpoint", "battery_storage"),
        ),
        LoadSegment(
            "hotel",
            (800, 2000),
            0.6,
            (
                (0, 0.45),
                (6, 0.45),
                (7.5, 0.7),
                (9, 0.6),
                (12, 0.6),
                (17, 0.7),
                (19, 0.85),
                (22, 0.8),
                (24, 0.5),
            ),
            all_days=True,
            weekend_level=1.08,
            holiday_level=1.1,
            cooling_per_c=0.03,
            heating_per_c=0.025,
            resources=("hvac_setpoint", "lighting", "chiller_plant"),
        ),
        LoadSegment(
            "campus",
            (3000, 8000),
            0.6,
            (
                (0, 0.3),
                (7, 0.35),
                (8, 0.8),
                (11.5, 0.9),
                (12, 0.7),
                (14, 0.9),
                (17, 0.75),
                (19, 0.85),
                (22.5, 0.7),
                (23.5, 0.35),
                (24, 0.3),
            ),
            ((0, 0.3), (8, 0.35), (10, 0.5), (22, 0.55), (23.5, 0.32), (24, 0.3)),
            cooling_per_c=0.03,
            heating_per_c=0.025,
            school_vacations=True,
            resources=("hvac_setpoint", "lighting", "chiller_plant", "ev_chargers"),
        ),
    )
}
