"""Customer baselines for demand-response measurement (see ``common`` for the interface).

Rule baselines (``rules``): ``SimilarDaysBaseline``, ``XofYBaseline``,
``PreEventAverageBaseline``; the ML counterfactual (``ml``): ``MLBaseline``.
``make_baseline(method)`` builds one by its method name. ``MLBaseline`` is importable from
here too, loaded on first use (LightGBM is imported only by callers of the ML baseline).
"""

from __future__ import annotations

from models.baselines.common import BaselineDetails, BaselineEstimator, check_load
from models.baselines.rules import PreEventAverageBaseline, SimilarDaysBaseline, XofYBaseline

RULE_METHODS = {
    "similar_days": SimilarDaysBaseline,
    "x_of_y": XofYBaseline,
    "pre_event": PreEventAverageBaseline,
}
METHODS = (*RULE_METHODS, "ml")


def make_baseline(method: str, **params) -> BaselineEstimator:
    """A baseline estimator by method name (``similar_days``, ``x_of_y``, ``pre_event``, ``ml``)."""
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
