"""Request/response models and the pure handler of ``POST /capability``.

The handler takes the service's ``Portfolio`` (events.csv, measurements and the optional
1-minute ``event_readings``) and a request, and answers the capability metrics of the
chosen events per customer and for the VPP with pass/fail and margins
(``inference.capability.capability_core`` over ``models.capability``).

Errors are ``forecasting.errors`` types, which the service maps to 4xx with the message as
the reason: an unknown event (``UnknownValueError``, 400), an unknown customer or one
without events (``UnknownSiteError``, 404), no event in the window, a customer that cannot
be baselined (``DataError``, 400); a window beyond ``serving.limits.MAX_EVENT_WINDOW``
(``since`` .. ``until``), more than ``MAX_CUSTOMERS`` customers or more than
``MAX_EVENTS`` events is a ``BoundExceededError`` (422).
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from forecasting.portfolio import Portfolio
from models.baselines import SERVED_RULES
from models.capability import CapabilityThresholds
from serving.limits import MAX_CUSTOMERS, MAX_EVENT_WINDOW, check_count, check_window
from serving.request_types import Instant, StrictRequest

MAX_EVENTS = 20


class ThresholdsIn(StrictRequest):
    """``models.capability.CapabilityThresholds`` as a request gives them (omitted: the
    level's defaults)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    level: Literal["I", "II"] = Field("II", description="response level tested: I (<= 5 "
                                      "min) or II (<= 15 min)")
    max_response_minutes: float | None = Field(None, ge=0, le=1440, description="allowed "
                                               "response time, minutes (default: the level's)")
    min_accuracy: float | None = Field(None, gt=0, le=1, description="required adjustment "
                                       "accuracy (default 0.8)")
    min_sustain_minutes: float | None = Field(None, gt=0, le=10080, description="required "
                                              "sustained minutes (default: the event's length "
                                              "minus the allowed response time)")
    response_share: float | None = Field(None, gt=0.1, le=1, description="share of the target "
                                         "that counts as responded (default 0.9)")
    sustain_share: float | None = Field(None, gt=0, le=1.5, description="share of the target "
                                        "that counts as held (default 0.8)")
    sustain_window_minutes: float | None = Field(None, gt=0, le=10080, description="window of "
                                                 "the regulation capacity (default: the hold "
                                                 "period)")
    min_capacity_kw: float | None = Field(None, gt=0, description="required regulation "
                                          "capacity, kW (default: not judged)")

    def build(self) -> CapabilityThresholds:
        fields = self.model_dump(exclude={"level"})
        return CapabilityThresholds.for_level(self.level).with_changes(**fields)


class CapabilityRequest(StrictRequest):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    event_ids: list[str] | None = Field(None, min_length=1, max_length=MAX_EVENTS,
                                        description=f"events to score (at most {MAX_EVENTS})")
    customers: list[str] | None = Field(None, min_length=1, description="only these "
                                        "customers' rows (a VPP row sums them when several); "
                                        f"at most {MAX_CUSTOMERS} (422 beyond)")
    since: Instant | None = Field(None, description="events starting at or after this "
                                        "time (with until: at most 7 days)")
    until: Instant | None = Field(None, description="events starting before this time")
    method: Literal[(*SERVED_RULES, "auto")] = Field(
        "similar_days", description="rule baseline (auto: the best rule on placebo days)")
    thresholds: ThresholdsIn = Field(default_factory=ThresholdsIn)

    @model_validator(mode="after")
    def _one_selection(self):
        if self.event_ids and (self.since or self.until):
            raise ValueError("give event_ids or a since/until window, not both")
        if (self.since is None) != (self.until is None):
            raise ValueError("give since and until together (a window of at most 7 days)")
        return self


class CapabilityResponse(BaseModel):
    thresholds: dict = Field(description="the thresholds applied")
    method: str
    rows: list[dict] = Field(description="per event and customer, then VPP: target_kw, "
                             "regulation_capacity_kw, response_time_minutes, "
                             "ramp_rate_kw_per_min, accuracy, sustained_minutes, "
                             "required_sustain_minutes, width_minutes, source "
                             "(event_readings or measurements), <check>_pass and "
                             "<check>_margin (positive = passing by that much), passed")
    notes: list[str] = Field(description="granularity of 15-minute rows, customers not "
                             "scored and why, the default selection")


def handle_capability(portfolio: Portfolio, request: CapabilityRequest) -> CapabilityResponse:
    """Capability metrics of the request's events (see the module doc)."""
    from inference.capability import capability_core, select_events

    check_count(request.customers, MAX_CUSTOMERS, "customers")
    if request.since is not None:
        check_window(request.since, request.until, MAX_EVENT_WINDOW, "event window")
    thresholds = request.thresholds.build()
    chosen = select_events(portfolio, request.event_ids, request.customers, request.since,
                           request.until)
    check_count(chosen, MAX_EVENTS, "events")
    report = capability_core(portfolio, event_ids=chosen, customers=request.customers,
                             method=request.method, thresholds=thresholds)
    notes = list(report.notes)
    if not request.event_ids and request.since is None:
        notes.insert(0, f"no event or window given: the latest event ({chosen[0]})")
    rows = json.loads(report.rows.to_json(orient="records", date_format="iso"))
    return CapabilityResponse(thresholds=thresholds.to_dict(), method=report.method, rows=rows,
                              notes=notes)
