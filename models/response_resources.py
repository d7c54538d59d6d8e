"""Per-resource response likelihood, where resources are settled separately
(``resource_events.csv``), falling back to the customer level with the reason.

A resource settled on its own is treated as a customer of its own: each
``resource_events`` row becomes an events.csv-like row whose ``customer_id`` is the
``resource_id`` (timing and type from the customer's event row, ``target_kw``/``actual_kw``
the resource's share), its resources.csv row is its only resource, and its metered load is
the customer's scaled by the resource's share of the customer's resource capacity. The same
leak-free features (``models.response_features.event_features``: the resource's own
history, eligibility, notice, calendar) and the same ``ResponseLikelihood`` then give a
resource-level probability.

``resource_level`` decides per resource which level answers: ``resource`` when the
customer is settled per resource, a resource model (or the resource's historical rate) is
available and the resource has at least ``min_resource_events`` settled events ended by the
notice; otherwise ``customer`` (the customer's probability for the whole commitment) and a
``fallback_reason``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MIN_RESOURCE_EVENTS = 3
LEVELS = ("resource", "customer")


def pseudo_events(events: pd.DataFrame, resource_events: pd.DataFrame) -> pd.DataFrame:
    """events.csv-like rows, one per resource share: ``customer_id`` = ``resource_id``;
    column ``owner_id`` the real customer."""
    ev = events.assign(event_id=events["event_id"].astype(str),
                       customer_id=events["customer_id"].astype(str))
    timing = ev.drop(columns=[c for c in ("target_kw", "actual_kw") if c in ev])
    rows = resource_events.merge(timing, on=["event_id", "customer_id"], how="inner")
    rows = rows.rename(columns={"customer_id": "owner_id"})
    rows["customer_id"] = rows["resource_id"].astype(str)
    return rows.drop(columns="resource_id").reset_index(drop=True)


def pseudo_resources(resources: pd.DataFrame) -> pd.DataFrame:
    """resources.csv rows with ``customer_id`` = ``resource_id`` (one resource each)."""
    return resources.assign(customer_id=resources["resource_id"].astype(str))


def capacity_shares(resources: pd.DataFrame) -> pd.Series:
    """Each resource's share (0..1) of its customer's summed resource capacity."""
    cap = resources["capacity_kw"].astype(float)
    total = cap.groupby(resources["customer_id"].astype(str)).transform("sum")
    return pd.Series((cap / total.where(total > 0)).to_numpy(),
                     index=resources["resource_id"].astype(str).to_numpy())


def pseudo_loads(loads_kw: dict[str, pd.Series], resources: pd.DataFrame
                 ) -> dict[str, pd.Series]:
    """Each resource's stand-in load (kW): its customer's metered load x its capacity
    share."""
    shares = capacity_shares(resources)
    owners = dict(zip(resources["resource_id"].astype(str),
                      resources["customer_id"].astype(str), strict=True))
    return {rid: loads_kw[owners[rid]] * float(share) for rid, share in shares.items()
            if owners[rid] in loads_kw and np.isfinite(share)}


def split_rows(rows: pd.DataFrame, resources: pd.DataFrame) -> pd.DataFrame:
    """events.csv rows of customers split into one row per resource of each (target_kw by
    capacity share, the generator's and the default operator split); pseudo-event rows
    (``customer_id`` = ``resource_id``, ``owner_id`` the customer)."""
    shares = capacity_shares(resources)
    res = resources.assign(customer_id=resources["customer_id"].astype(str),
                           resource_id=resources["resource_id"].astype(str))
    out = rows.assign(customer_id=rows["customer_id"].astype(str)).merge(
        res[["customer_id", "resource_id"]], on="customer_id", how="inner")
    out["target_kw"] = out["target_kw"].astype(float) * out["resource_id"].map(shares)
    out["actual_kw"] = np.nan
    out = out.rename(columns={"customer_id": "owner_id", "resource_id": "customer_id"})
    return out.reset_index(drop=True)


def settled_counts(pseudo: pd.DataFrame, notice: pd.Series) -> pd.Series:
    """Settled events of each resource (``pseudo`` rows with ``actual_kw``) that ended by
    the notice time of each row of ``notice`` (index resource id)."""
    settled = pseudo[pseudo["actual_kw"].notna()]
    ends = pd.to_datetime(settled["end"], utc=True)
    out = {}
    for rid, when in notice.items():
        own = ends[(settled["customer_id"] == rid).to_numpy()]
        out[rid] = int((own <= when).sum())
    return pd.Series(out, dtype=int)


def resource_level(resource_ids, owners, settled_customers: set[str], has_resource_model: bool,
                   counts: pd.Series, min_resource_events: int = MIN_RESOURCE_EVENTS
                   ) -> pd.DataFrame:
    """``level`` and ``fallback_reason`` per resource (see the module doc)."""
    levels, reasons = [], []
    for rid, owner in zip(resource_ids, owners, strict=True):
        n = int(counts.get(rid, 0))
        if owner not in settled_customers:
            reason = (f"customer {owner} is not settled per resource (no rows in "
                      "resource_events.csv)")
        elif not has_resource_model:
            reason = ("no resource-level model: too few settled resource rows to fit one "
                      "when the champion was trained")
        elif n < min_resource_events:
            reason = (f"resource {rid} has {n} settled event(s) ended by the notice; at least "
                      f"{min_resource_events} are needed")
        else:
            reason = None
        levels.append("customer" if reason else "resource")
        reasons.append(reason)
    return pd.DataFrame({"level": levels, "fallback_reason": pd.Series(reasons, dtype=object)})
