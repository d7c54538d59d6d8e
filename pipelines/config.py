"""Training configuration: one pydantic model, units in the field names."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from forecasting.features import FeatureSpec
from models.forecaster import DEFAULT_BUCKETS, SiteForecaster
from models.quantile import DEFAULT_QUANTILES, check_quantiles


class TrainingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    quantiles: tuple[float, ...] = Field(DEFAULT_QUANTILES, description="levels trained")
    holdout_days: float = Field(14, gt=0, description="held-out window before train_end")
    issue_hour_local: float = Field(12, ge=0, lt=24, description="day-ahead issue hour, local")
    calibration_days: float = Field(14, ge=0, description="conformal calibration window; 0=off")
    max_training_days: float | None = Field(730, gt=0, description="history used for training")
    n_estimators: int = Field(150, gt=0)
    learning_rate: float = Field(0.07, gt=0, le=1)
    num_leaves: int = Field(15, ge=2)
    n_bags: int = Field(3, ge=1, description="seed bag: boosters per level and horizon bucket, "
                        "each with its own seed, lead draws and rows, averaged (1 = a single "
                        "booster, as before; 3 takes most of the seed out of the forecast)")
    min_child_samples: int = Field(20, ge=1)
    random_state: int = 0
    log_plots: bool = Field(True, description="log the run's figures (forecast vs actual, "
                            "feature importance and contributions, error by lead)")
    promotion_tolerance: float = Field(
        0.01, ge=0, lt=1, description="a retrained model becomes champion unless its held-out "
        "mean pinball is more than this share worse than the champion's on the same days "
        "(fresher data wins near ties)")
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

    def feature_spec(self) -> FeatureSpec:
        if self.features == "weather_only":
            return FeatureSpec(lags_minutes=(), use_last_known=False, use_price=False,
                               extra_weather_columns=self.extra_weather_columns)
        return FeatureSpec(extra_weather_columns=self.extra_weather_columns)

    def forecaster(self, kind: str) -> SiteForecaster:
        return SiteForecaster(
            kind=kind, quantiles=self.quantiles, buckets=DEFAULT_BUCKETS,
            feature_spec=self.feature_spec(),
            n_estimators=self.n_estimators, learning_rate=self.learning_rate,
            num_leaves=self.num_leaves, min_child_samples=self.min_child_samples,
            n_bags=self.n_bags, calibration_days=self.calibration_days, max_training_days=self.max_training_days,
            random_state=self.random_state)
