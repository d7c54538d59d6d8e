"""Training configuration: one pydantic model, units in the field names."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from forecasting.features import FeatureSpec
from models.forecaster import DEFAULT_BUCKETS, SiteForecaster
from models.quantile import DEFAULT_QUANTILES, check_quantiles

KIND_BOOSTERS = {
    "load": {"n_bags": 3, "num_leaves": 15, "max_rows_per_bucket": 8000},
    "pv": {"n_bags": 1, "num_leaves": 31, "max_rows_per_bucket": 16000},
    "wind": {"n_bags": 1, "num_leaves": 31, "max_rows_per_bucket": 16000},
}
"""The booster set each kind trains with where ``TrainingConfig`` leaves ``n_bags``,
``num_leaves`` or ``max_rows_per_bucket`` at None, as measured (README, Seed stability). Load:
the seed bag of 3 boosters of 15 leaves on up to 8,000 rows each (OpenSTEF 307, seeds 0-4:
MAE 2.361 MW, sd 0.019; the single booster 2.379, sd 0.058). PV and wind: the single booster
of 31 leaves on up to 16,000 rows, which the bag did not beat (GEFCom2014 solar 0.01223 vs
0.01226 with the bag; GEFCom2012 wind overall RMSE 0.1594 vs 0.1619, each farm worse). A
single booster of the bag's size (15 leaves, 8,000 rows) is worse for wind: RMSE 0.1591 /
0.1772 on farms 1 / 5 against 0.1552 / 0.1731 for 31 leaves on 16,000 rows."""
DEFAULT_N_BAGS = {kind: b["n_bags"] for kind, b in KIND_BOOSTERS.items()}
KIND_FEATURES = {"wind": {"wind_direction_sectors": 8}}
"""Feature options a kind's sites get on top of the spec (``FeatureSpec``), as measured on
GEFCom2012 wind farms 1 and 5 through the product path (seeds 0 and 1): the 10 m speed split
by 8 direction sectors moved RMSE 0.1552 / 0.1731 -> 0.1550 / 0.1715 (seed 0) and 0.1547 /
0.1735 -> 0.1549 / 0.1722 (seed 1). Not kept (seed 0, same farms): the mean and spread over
the latest and 3 earlier NWP runs (0.1556 / 0.1733), the wind vector's u and v (0.1547 /
0.1730), sectors with u and v (0.1549 / 0.1724), an empirical power curve of the training
rows (binned, isotonic, at the forecast hub speed) as a feature (0.1547 / 0.1739)."""


class TrainingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    quantiles: tuple[float, ...] = Field(DEFAULT_QUANTILES, description="levels trained")
    holdout_days: float = Field(14, gt=0, description="held-out window before train_end")
    issue_hour_local: float = Field(12, ge=0, lt=24, description="day-ahead issue hour, local")
    calibration_days: float = Field(14, ge=0, description="conformal calibration window; 0=off")
    max_training_days: float | None = Field(730, gt=0, description="history used for training")
    n_estimators: int = Field(150, gt=0)
    learning_rate: float = Field(0.07, gt=0, le=1)
    num_leaves: int | None = Field(
        None, ge=2, description="leaves per tree; None: the site's kind's (KIND_BOOSTERS: 15 "
        "for load, 31 for pv and wind)")
    n_bags: int | None = Field(
        None, ge=1, description="seed bag: boosters per level and horizon bucket, each with "
        "its own seed, lead draws and rows, averaged (1 = a single booster). None: the "
        "measured best of the site's kind (KIND_BOOSTERS: 3 for load, 1 for pv and wind); "
        "a number applies to every kind")
    max_rows_per_bucket: int | None = Field(
        None, ge=1, description="most training rows per booster and horizon bucket (random "
        "targets); None: the site's kind's (KIND_BOOSTERS: 8,000 for load, 16,000 for pv and "
        "wind)")
    min_child_samples: int = Field(20, ge=1)
    random_state: int = 0
    log_plots: bool = Field(True, description="log the run's figures (forecast vs actual, "
                            "feature importance and contributions, error by lead)")
    promotion_tolerance: float = Field(
        0.01, ge=0, lt=1, description="a retrained model becomes champion unless its held-out "
        "mean pinball is more than this share worse than the champion's on the held-out days "
        "the champion was not trained on (fresher data wins near ties); a retrain of the "
        "champion's own configuration on newer data gets pipelines.training.RETRAIN_GUARD "
        "instead")
    features: Literal["default", "weather_only"] = Field(
        "default", description="default: history (lags, last known level), weather, prices, "
        "calendar; weather_only: weather, solar geometry and calendar, no measured history "
        "and no prices (a model that forecasts any horizon from the NWP alone)")
    extra_weather_columns: tuple[str, ...] = Field(
        (), description="weather columns outside the contract to use as features (lower-case, "
        "unit in the name, e.g. toa_net_solar_wm2)")

    @field_validator("quantiles")
    @classmethod
    def _levels(cls, v):
        return check_quantiles(v)

    def feature_spec(self, kind: str | None = None) -> FeatureSpec:
        """The features of ``features``, with the kind's options (``KIND_FEATURES``)."""
        kind_options = KIND_FEATURES.get(kind, {})
        if self.features == "weather_only":
            return FeatureSpec(lags_minutes=(), use_last_known=False, use_price=False,
                               extra_weather_columns=self.extra_weather_columns,
                               **kind_options)
        return FeatureSpec(extra_weather_columns=self.extra_weather_columns, **kind_options)

    def boosters_for(self, kind: str) -> dict[str, int]:
        """``n_bags``, ``num_leaves`` and ``max_rows_per_bucket`` a ``kind`` site trains with:
        each as given, or the kind's measured best (``KIND_BOOSTERS``) where None."""
        if kind not in KIND_BOOSTERS:
            raise ValueError(f"unknown kind {kind!r}, expected one of {list(KIND_BOOSTERS)}")
        return {name: value if (value := getattr(self, name)) is not None else default
                for name, default in KIND_BOOSTERS[kind].items()}

    def bags_for(self, kind: str) -> int:
        """The seed-bag size a ``kind`` site trains with (``boosters_for``)."""
        return self.boosters_for(kind)["n_bags"]

    def forecaster(self, kind: str) -> SiteForecaster:
        return SiteForecaster(
            kind=kind, quantiles=self.quantiles, buckets=DEFAULT_BUCKETS,
            feature_spec=self.feature_spec(kind),
            n_estimators=self.n_estimators, learning_rate=self.learning_rate,
            min_child_samples=self.min_child_samples, **self.boosters_for(kind),
            calibration_days=self.calibration_days, max_training_days=self.max_training_days,
            random_state=self.random_state)
