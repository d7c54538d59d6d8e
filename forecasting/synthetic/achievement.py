"""Synthetic demand-response achievement: what each invited customer commits and delivers.

Synthetic: the behaviour model of the sample portfolio's customers (the calls come from
``forecasting.synthetic.event_calls``, the whole is put together in
``forecasting.synthetic.events``).

- **targets**: each invited customer commits ``target_kw`` of at most 95 % of its
  resources and at most 30 % of its load in the window.
- **achievement** (``actual_kw / target_kw``) = reliability x coverage**0.6 x notice penalty
  x time-of-day factor x lognormal noise, where *coverage* is what the customer's resources
  can deliver given the notice (level-III resources mostly miss short notice, level II
  partly), their maximum duration and how much of the site is running (an office at 20:00
  has little lighting and HVAC left to curtail), over the target. Reliability is a
  per-customer trait: some customers reliably over-deliver (1.08-1.25), some under-deliver
  (0.6-0.82), most are near 1. A few no-shows deliver 0-15 %.
- **sub-metering**: ``settle(..., per_resource=True)`` gives one law per resource share
  (who is sub-metered: ``forecasting.synthetic.events``).
- **truth**: each row's law (``forecasting.synthetic.truth.AchievementLaw``) is returned
  with its target, so its probability of delivering is known exactly.
"""

from __future__ import annotations

import numpy as np

from forecasting.synthetic.event_calls import EventCall
from forecasting.synthetic.load import LoadTruth
from forecasting.synthetic.resources import Resource
from forecasting.synthetic.truth import NO_SHOW_MAX_ACHIEVEMENT, AchievementLaw

NOISE_SIGMA = 0.12  # lognormal noise of the achievement, reductions
VALLEY_NOISE_SIGMA = 0.15
UNAVAILABLE_ON_SHORT_NOTICE = {"I": 1.0, "II": 0.6, "III": 0.15}  # share still deliverable
MAX_TARGET_SHARE_OF_LOAD = 0.30
MAX_ACTUAL_SHARE_OF_LOAD = 0.5


def draw_reliability(rng: np.random.Generator, customer_ids: list[str]) -> dict[str, float]:
    """Per-customer reliability: a quarter over-deliver, a quarter under-deliver."""
    out = {}
    for customer_id in customer_ids:
        u = rng.uniform()
        if u < 0.25:
            out[customer_id] = float(rng.uniform(1.08, 1.25))
        elif u < 0.5:
            out[customer_id] = float(rng.uniform(0.6, 0.82))
        else:
            out[customer_id] = float(rng.uniform(0.9, 1.03))
    return out


def coverage(
    resources: list[Resource],
    notice_minutes: float,
    duration_minutes: float,
    activity: float,
    target_kw: float,
) -> float:
    """Share of ``target_kw`` the resources can deliver: a resource given less than its
    ``min_notice_minutes`` delivers only ``UNAVAILABLE_ON_SHORT_NOTICE[level]`` of its
    capacity, half of that again if it cannot respond before the start; one whose
    ``max_duration_minutes`` is shorter than the event delivers pro rata; curtailment of
    running equipment scales with the site's ``activity`` (0..1)."""
    deliverable_kw = 0.0
    for r in resources:
        t = r.template
        available = (
            1.0 if notice_minutes >= t.min_notice_minutes else UNAVAILABLE_ON_SHORT_NOTICE[t.level]
        )
        if t.response_minutes > notice_minutes:
            available *= 0.5
        lasting = min(1.0, t.max_duration_minutes / duration_minutes)
        running = activity if t.follows_activity else 1.0
        deliverable_kw += r.capacity_kw * available * lasting * running
    return deliverable_kw / abs(target_kw)


def expected_achievement(
    reliability: float, coverage_share: float, notice_minutes: float, start_local_hour: float
) -> float:
    """Median ``actual_kw / target_kw`` of a reduction event (before noise and no-shows):
    ``reliability * min(coverage, 1)**0.6 * notice penalty * evening factor``; the penalty
    is 0.85 under 60 minutes' notice and 0.94 under 240, the evening factor 0.93 from 18:00."""
    penalty = 0.85 if notice_minutes < 60 else 0.94 if notice_minutes < 240 else 1.0
    evening = 0.93 if start_local_hour >= 18 else 1.0
    return reliability * min(coverage_share, 1.0) ** 0.6 * penalty * evening


def settle(
    rng: np.random.Generator,
    call: EventCall,
    load: LoadTruth,
    own: list[Resource],
    reliability: float,
    capacity_kw: float,
    per_resource: bool = False,
) -> tuple[float, AchievementLaw, list[tuple[Resource, AchievementLaw]]]:
    """Committed ``target_kw`` of one customer in one event and the law of its settled
    response; for a sub-metered customer on a reduction event (``per_resource``), the laws
    of its resources' shares instead (the customer's law is then None)."""
    window = slice(call.first_slot, call.first_slot + call.n_slots)
    gross = load.gross_kw[window]
    if call.event_type == "valley_filling":
        flexible_kw = sum(r.capacity_kw for r in own if r.template.flexible_up)
        headroom_kw = max(capacity_kw - gross.max(), 0.0)
        target_kw = min(
            rng.uniform(0.3, 0.6) * flexible_kw,
            MAX_TARGET_SHARE_OF_LOAD * gross.mean(),
            0.8 * headroom_kw,
        )
        target_kw = -max(10.0, np.floor(target_kw / 10) * 10)
        law = AchievementLaw(reliability, VALLEY_NOISE_SIGMA, 0.0, target_kw, 0.9 * headroom_kw)
        return target_kw, law, []
    total_kw = sum(r.capacity_kw for r in own)
    target_kw = min(rng.uniform(0.55, 0.95) * total_kw, MAX_TARGET_SHARE_OF_LOAD * gross.mean())
    target_kw = max(10.0, np.floor(target_kw / 10) * 10)
    activity = float(load.activity[window].mean())
    no_show_p = 0.04 * float(np.clip((1.25 - reliability) / 0.25, 0.2, 2.5))
    start_hour = call.start.hour + call.start.minute / 60
    max_kw = MAX_ACTUAL_SHARE_OF_LOAD * gross.min()

    def law_of(resources: list[Resource], kw: float, cap_kw: float) -> AchievementLaw:
        share = coverage(resources, call.notice_minutes, 15 * call.n_slots, activity, kw)
        median = expected_achievement(reliability, share, call.notice_minutes, start_hour)
        return AchievementLaw(median, NOISE_SIGMA, no_show_p, kw, cap_kw)

    if not per_resource:
        return target_kw, law_of(own, target_kw, max_kw), []
    weights = np.array([r.capacity_kw for r in own]) / total_kw
    shares = np.round(target_kw * weights, 1)
    shares[-1] = round(target_kw - shares[:-1].sum(), 1)
    parts = [(r, law_of([r], float(kw), max_kw * w))
             for r, kw, w in zip(own, shares, weights, strict=True) if kw > 0]
    return target_kw, None, parts


def draw_resources(
    rng: np.random.Generator, parts: list[tuple[Resource, AchievementLaw]]
) -> list[float]:
    """Settled kW of each resource: one no-show draw for the customer, noise per resource."""
    absent = rng.uniform() < parts[0][1].no_show_p
    out = []
    for _, law in parts:
        achievement = (
            rng.uniform(0.0, NO_SHOW_MAX_ACHIEVEMENT)
            if absent
            else law.median * np.exp(rng.normal(0.0, law.sigma))
        )
        out.append(law.settle_kw(achievement))
    return out
