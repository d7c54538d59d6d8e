"""Customer baselines for demand-response measurement (see ``common`` for the interface).

Rule baselines (``rules``): ``SimilarDaysBaseline``, ``XofYBaseline``,
``PreEventAverageBaseline``; the ML counterfactual (``ml``): ``MLBaseline``.
``make_baseline(method)`` builds one by its method name. ``MLBaseline`` is importable from
here too, loaded on first use (LightGBM is imported only by callers of the ML baseline).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from models.baselines.common import BaselineDetails, BaselineEstimator, check_load
from models.baselines.rules import PreEventAverageBaseline, SimilarDaysBaseline, XofYBaseline

# the one list of rule baselines: name -> factory (keyword parameters on top of the
# variant's own); the placebo evaluation scores all of them
RULE_METHODS: dict[str, Callable[..., BaselineEstimator]] = {
    "similar_days": SimilarDaysBaseline,
    "similar_days_high4of5": partial(SimilarDaysBaseline, high_x=4),
    "x_of_y": XofYBaseline,
    "x_of_y_additive": partial(XofYBaseline, adjustment="additive"),
    "pre_event": PreEventAverageBaseline,
}
# the rules a caller of /baseline, /capability and `vpp baseline` names (one of each family;
# the variants are tuned parameters of these)
SERVED_RULES = ("similar_days", "x_of_y", "pre_event")
METHODS = (*RULE_METHODS, "ml")


def make_baseline(method: str, **params) -> BaselineEstimator:
    """A baseline estimator by method name (``RULE_METHODS`` or ``ml``)."""
    if method == "ml":
        from models.baselines.ml import MLBaseline

        return MLBaseline(**params)
    if method not in RULE_METHODS:
        raise ValueError(f"unknown baseline method {method!r}, expected one of {list(METHODS)}")
    return RULE_METHODS[method](**params)


def __getattr__(name: str):
    if name == "MLBaseline":
        from models.baselines.ml import MLBaseline

        return MLBaseline
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["METHODS", "RULE_METHODS", "BaselineDetails", "BaselineEstimator", "MLBaseline",
           "PreEventAverageBaseline", "SimilarDaysBaseline", "XofYBaseline", "check_load",
           "make_baseline"]
