"""Synthetic demand-response events, the customers' realised responses, and their effect on
the metered load.

Synthetic: invented events for the sample portfolio. The model in three modules:

- ``forecasting.synthetic.event_calls``: **when** events are called, with what **notice**
  and compensation, and who is **invited**;
- ``forecasting.synthetic.achievement``: each customer's **target** and **achievement**
  (reliability, coverage of its resources, notice, time of day, noise, no-shows);
- this module: draws the customers' reliability and who is sub-metered, settles every
  invited customer, and writes the response into the load.

- **sub-metering**: ``SUB_METERED_SHARE`` of the customers (with two or more resources)
  are settled per resource on reduction events: the target is split over their resources
  by capacity, each resource's achievement follows the same model with its own coverage and
  noise (the no-show is the customer's), and the customer's ``actual_kw`` is their sum
  (``resource_events`` table).
- **truth**: every row's probability of delivering (achievement >= 0.8, the default
  settlement rule) is known from the law it was drawn from (``forecasting.synthetic.truth``)
  and returned as ``EventOutcome.truth``; the generator writes it beside the portfolio.
- **metering**: during the event the load is reduced by ``actual_kw`` on average (the first
  quarter hour ramps), so counterfactual minus metered load averages exactly ``actual_kw``;
  thermal resources (HVAC, refrigeration) rebound for an hour afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecasting.contract import TABLES
from forecasting.synthetic.achievement import draw_reliability, draw_resources, settle
from forecasting.synthetic.event_calls import EventCall, invite, plan_events
from forecasting.synthetic.grid import TimeGrid
from forecasting.synthetic.load import LoadTruth
from forecasting.synthetic.resources import Resource
from forecasting.synthetic.sites import SiteSpec
from forecasting.synthetic.truth import joint_p_deliver, truth_frame, truth_row

SUB_METERED_SHARE = 0.3  # customers settled per resource (reduction events)
RESOURCE_EVENT_COLUMNS = ("event_id", "customer_id", "resource_id", "target_kw", "actual_kw")
RAMP_FIRST_SLOT = 0.7
REBOUND_SHAPE = np.array([1.0, 0.75, 0.5, 0.25])
REBOUND_SHARE = 0.3


@dataclass(frozen=True)
class EventOutcome:
    """``events`` table and, per customer, the response in kW on the 15-minute grid
    (positive = load reduced; metered = counterfactual - response); ``resource_events`` the
    per-resource split of the sub-metered customers' rows; ``truth`` every row's (and
    resource share's) probability of delivering (``forecasting.synthetic.truth``)."""

    events: pd.DataFrame
    response_kw: dict[str, np.ndarray]
    reliability: dict[str, float]
    resource_events: pd.DataFrame  # per-resource settlement of sub-metered customers
    truth: pd.DataFrame  # delivery probabilities (truth.TRUTH_COLUMNS)


def _add_response(
    response_kw: np.ndarray, call: EventCall, actual_kw: float, own: list[Resource]
) -> None:
    """Add the event's load change to ``response_kw`` in place: ``actual_kw`` on average over
    the event (first quarter hour ramping), then the rebound of thermal resources."""
    window = slice(call.first_slot, call.first_slot + call.n_slots)
    shape = np.ones(call.n_slots)
    shape[0] = RAMP_FIRST_SLOT
    response_kw[window] += actual_kw * shape / shape.mean()
    thermal_kw = sum(r.capacity_kw for r in own if r.template.thermal)
    if actual_kw > 0 and thermal_kw > 0:
        thermal_share = min(1.0, thermal_kw / sum(r.capacity_kw for r in own))
        after = np.arange(window.stop, min(window.stop + REBOUND_SHAPE.size, response_kw.size))
        response_kw[after] -= (
            REBOUND_SHARE * actual_kw * thermal_share * REBOUND_SHAPE[: after.size]
        )


def _sub_metered(rng: np.random.Generator, customer_ids: list[str], by_customer: dict
                 ) -> set[str]:
    """Customers whose resources are metered and settled separately: ``SUB_METERED_SHARE``
    of those with at least two resources."""
    candidates = [c for c in customer_ids if len(by_customer[c]) >= 2]
    count = min(len(candidates), round(SUB_METERED_SHARE * len(customer_ids)))
    return set(rng.choice(candidates, size=count, replace=False)) if count else set()


def simulate_events(
    rng: np.random.Generator,
    grid: TimeGrid,
    load_sites: list[SiteSpec],
    loads: dict[str, LoadTruth],
    resources: list[Resource],
    regional_temp_c: np.ndarray,
) -> EventOutcome:
    """Plan events, invite customers, settle their responses (see module docstring)."""
    customer_ids = [s.customer_id for s in load_sites]
    capacity_kw = {s.customer_id: s.capacity_kw for s in load_sites}
    by_customer = {c: [r for r in resources if r.customer_id == c] for c in customer_ids}
    reliability = draw_reliability(rng, customer_ids)
    sub_metered = _sub_metered(rng, customer_ids, by_customer)
    truth_rng = np.random.default_rng(int(rng.integers(2**32)))  # Monte Carlo of the truth
    response = {c: np.zeros(len(grid.index_15min)) for c in customer_ids}
    rows, resource_rows, truth = [], [], []
    calls = plan_events(rng, grid, regional_temp_c) if customer_ids else []
    number = 0
    for call in calls:
        invited = invite(rng, call, customer_ids, by_customer)
        if not invited:
            continue
        number += 1
        event_id = f"ev{number:03d}"
        for customer_id in invited:
            own = by_customer[customer_id]
            target_kw, law, parts = settle(
                rng,
                call,
                loads[customer_id],
                own,
                reliability[customer_id],
                capacity_kw[customer_id],
                per_resource=customer_id in sub_metered,
            )
            if law is not None:
                actual_kw = law.settle_kw(law.draw(rng))
                truth.append(truth_row(event_id, customer_id, None, law, law.p_deliver(),
                                       target_kw))
            else:
                settled = draw_resources(rng, parts)
                actual_kw = float(np.round(sum(settled), 1))
                p_joint = joint_p_deliver([part for _, part in parts], truth_rng)
                truth.append(truth_row(event_id, customer_id, None, None, p_joint, target_kw))
                for (resource, part), kw in zip(parts, settled, strict=True):
                    resource_rows.append({"event_id": event_id, "customer_id": customer_id,
                                          "resource_id": resource.resource_id,
                                          "target_kw": part.target_kw, "actual_kw": kw})
                    truth.append(truth_row(event_id, customer_id, resource.resource_id, part,
                                           part.p_deliver(), part.target_kw))
            _add_response(response[customer_id], call, actual_kw, own)
            rows.append(
                {
                    "event_id": event_id,
                    "customer_id": customer_id,
                    "event_type": call.event_type,
                    "notice_time": call.notice_time.tz_convert("UTC"),
                    "start": call.start.tz_convert("UTC"),
                    "end": call.end.tz_convert("UTC"),
                    "target_kw": float(target_kw),
                    "compensation_cny_per_mw": call.compensation_cny_per_mw,
                    "actual_kw": actual_kw,
                }
            )
    spec = TABLES["events"]  # the contract's columns, in its order
    events = pd.DataFrame(rows, columns=[*spec.required, *spec.optional])
    for column in ("notice_time", "start", "end"):
        events[column] = pd.to_datetime(events[column], utc=True).dt.as_unit(grid.index_15min.unit)
    resource_events = pd.DataFrame(resource_rows, columns=list(RESOURCE_EVENT_COLUMNS))
    return EventOutcome(events, response, reliability, resource_events, truth_frame(truth))
