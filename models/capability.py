"""Capability metrics of a demand response, as provincial VPP rules test them (pure functions).

A capability test instructs a customer (or the whole VPP) to change its load by ``target_kw``
and judges how it responded. The inputs are the readings of one event: regular readings of
width ``width_minutes`` (1-minute meters, or the 15-minute settlement meters), each labelled
by its start as ``offset_minutes`` after the reference time (the instructed event start),
and ``response_kw`` = (baseline - actual) x sign(target): the change in the requested
direction, kW mean over the reading (``forecasting.settlement`` sign convention). With
``s(t) = response_kw(t) / |target_kw|`` (share of the target):

- **response time** (minutes): the start of the first reading at or after the reference
  whose share reaches ``response_share`` (default 0.9). Its granularity is the reading
  width: 15-minute readings can only say "0, 15, 30 ... minutes".
- **ramp rate** (kW/min): ``(response_share - 0.1) x |target| / (t_high - t_10)``, the times
  where the response first crosses 10 % and ``response_share`` of the target on the curve
  through the readings' midpoints, anchored at 0 at the reference (no response before the
  instruction). Exact for a linear ramp; a step is as steep as the reading width can show.
- **adjustment accuracy**: ``1 - mean |s(t) - 1|`` over the *hold period*, the readings
  that start once the allowed response time (``max_response_minutes``) has passed: the
  deviation from the instruction while it should be held (over-delivery deviates too).
- **sustained minutes**: the longest run of consecutive readings with ``s(t) >=
  sustain_share`` (default 0.8), times the width.
- **regulation capacity** (kW): the highest mean response over ``sustain_window_minutes``
  of consecutive readings (default: the hold period's length, i.e. what was held from the
  allowed response time to the end of the event).

``assess`` compares them with ``CapabilityThresholds`` and gives each check's margin in the
check's unit, positive when it passes (for response time: threshold - value).

References
----------
.. [1] Chinese provincial virtual-power-plant and demand-response implementation rules
   (e.g. Jiangsu, Guangdong, Shanxi) test an aggregator's regulation capacity, response
   time, and adjustment accuracy (1 - |actual - instructed| / instructed) before admitting
   it; resources responding within 5 minutes count as fast (level I), within 15 minutes as
   level II. The defaults here follow those rules' typical values, not any province's
   current text: give the thresholds of the rule that applies.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np

from forecasting.errors import DataError

LEVEL_MAX_RESPONSE_MINUTES = {"I": 5.0, "II": 15.0}
RAMP_START_SHARE = 0.1


@dataclass(frozen=True)
class CapabilityThresholds:
    """What a capability test requires, and how it is measured.

    ``level`` and ``max_response_minutes``: the response level tested and its allowed
    response time (I: 5 min, II: 15 min; ``for_level`` sets both). ``min_accuracy``:
    adjustment accuracy required (0..1). ``min_sustain_minutes``: how long the response must
    be held at ``sustain_share`` of the target (None: from the allowed response time to
    the end of the event). ``response_share``: share of the target that counts as
    responded. ``sustain_window_minutes``: window of the regulation capacity (None: the
    hold period). ``min_capacity_kw``: regulation capacity required (None: not judged).
    """

    level: str = "II"
    max_response_minutes: float = 15.0
    min_accuracy: float = 0.8
    min_sustain_minutes: float | None = None
    response_share: float = 0.9
    sustain_share: float = 0.8
    sustain_window_minutes: float | None = None
    min_capacity_kw: float | None = None

    def __post_init__(self) -> None:
        def bad(name: str, rule: str):
            raise ValueError(f"capability threshold {name}={getattr(self, name)!r}: {rule}")

        for name in ("max_response_minutes", "min_accuracy", "response_share", "sustain_share"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                bad(name, "must be a finite number")
        for name in ("min_sustain_minutes", "sustain_window_minutes", "min_capacity_kw"):
            value = getattr(self, name)
            if value is not None and (not math.isfinite(value) or value <= 0):
                bad(name, "must be a positive finite number, or None")
        if self.max_response_minutes < 0:
            bad("max_response_minutes", "must be >= 0")
        if not 0 < self.min_accuracy <= 1:
            bad("min_accuracy", "must lie in (0, 1]")
        if not RAMP_START_SHARE < self.response_share <= 1:
            bad("response_share", f"must lie in ({RAMP_START_SHARE}, 1]")
        if not 0 < self.sustain_share <= 1.5:
            bad("sustain_share", "must lie in (0, 1.5]")

    @classmethod
    def for_level(cls, level: str, **overrides) -> CapabilityThresholds:
        """Thresholds of response level ``I`` (5 min) or ``II`` (15 min), other fields as given."""
        if level not in LEVEL_MAX_RESPONSE_MINUTES:
            raise ValueError(f"unknown level {level!r} for a capability test, expected one of "
                             f"{list(LEVEL_MAX_RESPONSE_MINUTES)} (level III is planned with "
                             "hours of notice: give max_response_minutes instead)")
        fields = {"max_response_minutes": LEVEL_MAX_RESPONSE_MINUTES[level], **overrides}
        return cls(level=level, **fields)

    def with_changes(self, **changes) -> CapabilityThresholds:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class CapabilityMetrics:
    """Metrics of one response (see the module doc). kW are mean power, minutes as named;
    None where the response never got there (no response time, no ramp) or no reading
    falls in the hold period (accuracy)."""

    target_kw: float
    width_minutes: float
    duration_minutes: float
    n_readings: int
    mean_response_kw: float
    regulation_capacity_kw: float | None
    capacity_window_minutes: float
    response_time_minutes: float | None
    ramp_rate_kw_per_min: float | None
    accuracy: float | None
    sustained_minutes: float
    required_sustain_minutes: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Check:
    """One threshold: ``margin`` in ``unit``, positive when passing (None: no value)."""

    name: str
    value: float | None
    threshold: float
    unit: str
    passed: bool
    margin: float | None


def _first_crossing(t: np.ndarray, y: np.ndarray, level: float) -> float | None:
    """First time the piecewise-linear curve through (t, y) reaches ``level``."""
    above = np.flatnonzero(y >= level)
    if above.size == 0:
        return None
    i = int(above[0])
    if i == 0:
        return float(t[0])
    return float(t[i - 1] + (level - y[i - 1]) / (y[i] - y[i - 1]) * (t[i] - t[i - 1]))


def _longest_run(mask: np.ndarray) -> int:
    best = run = 0
    for ok in mask:
        run = run + 1 if ok else 0
        best = max(best, run)
    return best


def capability_metrics(offset_minutes, response_kw, target_kw: float, width_minutes: float,
                       duration_minutes: float,
                       thresholds: CapabilityThresholds | None = None) -> CapabilityMetrics:
    """Metrics of one response (see the module doc).

    ``offset_minutes``: reading starts after the reference (minutes; readings before it or
    at/after ``duration_minutes`` are ignored); ``response_kw``: kW in the requested
    direction per reading (NaN: missing reading, skipped and breaking a sustained run);
    ``target_kw``: the instruction (its sign is already in ``response_kw``);
    ``width_minutes``: the reading width; ``duration_minutes``: the event's length.
    """
    th = thresholds or CapabilityThresholds()
    target = abs(float(target_kw))
    if not math.isfinite(target) or target == 0:
        raise DataError(f"target_kw {target_kw!r}: a capability test needs a non-zero target")
    if not width_minutes > 0 or not duration_minutes >= width_minutes:
        raise DataError(f"width_minutes {width_minutes} and duration_minutes "
                        f"{duration_minutes}: need 0 < width <= duration")
    offset = np.asarray(offset_minutes, dtype=float)
    response = np.asarray(response_kw, dtype=float)
    if offset.shape != response.shape:
        raise DataError(f"{offset.size} offsets but {response.size} responses")
    order = np.argsort(offset, kind="stable")
    offset, response = offset[order], response[order]
    inside = (offset >= 0) & (offset < duration_minutes)
    offset, response = offset[inside], response[inside]
    present = np.isfinite(response)
    if not present.any():
        raise DataError("no reading of the response within the event window")
    share = response / target

    reached = np.flatnonzero(present & (share >= th.response_share))
    response_time = float(offset[reached[0]]) if reached.size else None

    t = np.r_[0.0, offset[present] + width_minutes / 2]
    y = np.r_[0.0, share[present]]
    t_low = _first_crossing(t, y, RAMP_START_SHARE)
    t_high = _first_crossing(t, y, th.response_share)
    ramp = None
    if t_low is not None and t_high is not None and t_high > t_low:
        ramp = (th.response_share - RAMP_START_SHARE) * target / (t_high - t_low)

    allowed = th.max_response_minutes
    hold = present & (offset >= allowed)
    accuracy = float(1.0 - np.mean(np.abs(share[hold] - 1.0))) if hold.any() else None

    # consecutive readings: a missing one (NaN, or a gap in the offsets) breaks the run
    grid = np.arange(0.0, duration_minutes, width_minutes)
    on_grid = np.full(grid.size, np.nan)
    slot = np.round(offset / width_minutes).astype(int)
    keep = (slot >= 0) & (slot < grid.size)
    on_grid[slot[keep]] = share[keep]
    sustained = _longest_run(np.nan_to_num(on_grid, nan=-np.inf) >= th.sustain_share)
    hold_minutes = max(duration_minutes - allowed, width_minutes)
    required = th.min_sustain_minutes or hold_minutes

    window = min(th.sustain_window_minutes or hold_minutes, duration_minutes)
    n_window = max(1, math.ceil(window / width_minutes - 1e-9))
    capacity = None
    if n_window <= grid.size:
        kernel = np.ones(n_window)
        sums = np.convolve(np.nan_to_num(on_grid), kernel, mode="valid")
        complete = np.convolve(np.isfinite(on_grid).astype(float), kernel, mode="valid")
        full = complete == n_window
        if full.any():
            capacity = float(np.max(sums[full]) / n_window * target)
    return CapabilityMetrics(
        target_kw=float(target_kw), width_minutes=float(width_minutes),
        duration_minutes=float(duration_minutes), n_readings=int(present.sum()),
        mean_response_kw=float(np.mean(response[present])), regulation_capacity_kw=capacity,
        capacity_window_minutes=float(n_window * width_minutes),
        response_time_minutes=response_time, ramp_rate_kw_per_min=ramp, accuracy=accuracy,
        sustained_minutes=float(sustained * width_minutes), required_sustain_minutes=required)


def assess(metrics: CapabilityMetrics, thresholds: CapabilityThresholds | None = None
           ) -> list[Check]:
    """Pass/fail of each threshold with its margin (``Check``); capacity only when
    ``min_capacity_kw`` is set."""
    th = thresholds or CapabilityThresholds()
    checks = []
    rt = metrics.response_time_minutes
    checks.append(Check("response_time", rt, th.max_response_minutes, "min",
                        rt is not None and rt <= th.max_response_minutes,
                        None if rt is None else th.max_response_minutes - rt))
    acc = metrics.accuracy
    checks.append(Check("accuracy", acc, th.min_accuracy, "share",
                        acc is not None and acc >= th.min_accuracy,
                        None if acc is None else acc - th.min_accuracy))
    checks.append(Check("sustain", metrics.sustained_minutes, metrics.required_sustain_minutes,
                        "min", metrics.sustained_minutes >= metrics.required_sustain_minutes,
                        metrics.sustained_minutes - metrics.required_sustain_minutes))
    if th.min_capacity_kw is not None:
        cap = metrics.regulation_capacity_kw
        checks.append(Check("capacity", cap, th.min_capacity_kw, "kW",
                            cap is not None and cap >= th.min_capacity_kw,
                            None if cap is None else cap - th.min_capacity_kw))
    return checks
