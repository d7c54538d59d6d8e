"""MLflow: where runs go, one experiment per model kind, registry names and aliases.

The tracking URI comes from ``MLFLOW_TRACKING_URI``; when it is unset the default is a local
sqlite store ``var/mlflow/mlflow.db`` under the current directory (``make`` runs from the
project root) with artifacts in ``var/mlflow/artifacts``. Nothing here sets the URI globally
on import: ``tracking_session(uri)`` sets it for the duration of a ``with`` block and
restores the previous one.

Registry: a site's model is registered as ``<kind>-<site_id>`` (``load-load_c01``); the
alias ``champion`` marks the version that serves, ``challenger`` the latest that did not
beat it on the same held-out window.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from inference.tracking import (  # noqa: F401  (the read side, used with the writes here)
    CHALLENGER,
    CHAMPION,
    TrackingUnavailableError,
    check_reachable,
    default_tracking_uri,
    registered_name,
    tracking_uri,
)

if TYPE_CHECKING:  # mlflow is imported where it is used: `vpp --help` need not load it
    from mlflow import MlflowClient


def artifacts_root(uri: str) -> str | None:
    """Artifact root for new experiments: MLFLOW_ARTIFACTS_DIR, else next to a sqlite file."""
    if os.environ.get("MLFLOW_ARTIFACTS_DIR"):
        return Path(os.environ["MLFLOW_ARTIFACTS_DIR"]).resolve().as_uri()
    if uri.startswith("sqlite:///"):
        return (Path(uri.removeprefix("sqlite:///")).parent / "artifacts").resolve().as_uri()
    return None  # a tracking server decides


def experiment_name(kind: str) -> str:
    return f"vpp-{kind}"


@contextlib.contextmanager
def tracking_session(uri: str | None = None):
    """Use ``uri`` (default: ``tracking_uri()``) for MLflow calls inside the block.

    ``mlflow.set_tracking_uri`` also writes the ``MLFLOW_TRACKING_URI`` (and registry)
    environment variables; both the module state and the environment are restored on exit,
    so a session leaves no trace on later calls.
    """
    import mlflow
    from mlflow import MlflowClient
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    uri = uri or tracking_uri()
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    saved_env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    saved = (tracking_utils._tracking_uri, registry_utils._registry_uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        check_reachable(client, uri)
        yield client
    finally:
        mlflow.set_tracking_uri(saved[0])
        mlflow.set_registry_uri(saved[1])
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def ensure_experiment(client: MlflowClient, name: str) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    root = artifacts_root(client.tracking_uri)
    location = f"{root}/{name}" if root else None
    return client.create_experiment(name, artifact_location=location)


def champion_version(client: MlflowClient, name: str):
    """The registered version under alias ``champion``, or None."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None


def existing_champion(name: str, uri: str | None = None) -> str | None:
    """The version of ``name@champion`` in the registry at ``uri``, or None (for
    ``--skip-trained``)."""
    with tracking_session(uri) as client:
        current = champion_version(client, name)
    return None if current is None else str(current.version)


def promote(client: MlflowClient, name: str, version: str, metric: str, new: float,
            old: float | None, old_version: str | None, window: str,
            keep_reason: str | None = None, tolerance: float = 0.0) -> tuple[str, str]:
    """Champion/challenger: ``version`` becomes champion if there is none or if its ``metric``
    (lower is better, >= 0) is below the champion's on the same held-out ``window`` times
    ``1 + tolerance``. A tolerance > 0 lets a retrain on fresher data win a near tie: two fits
    of one configuration differ on a two-week window mostly by noise, and an older champion
    kept on noise serves stale models for months.

    ``keep_reason``: the champion stays without a comparison, for that reason.

    Sets the alias, tags the version and the active run; returns (alias, reason).
    """
    import mlflow

    if keep_reason is not None and old_version is not None:
        promoted, reason = False, keep_reason
    else:
        promoted = old is None or not np.isfinite(old) or new < old * (1.0 + tolerance)
        margin = f" (tolerance {tolerance:.0%})" if tolerance else ""
        reason = ("first model" if old is None else
                  f"{metric} {new:.4g} vs champion v{old_version} {old:.4g} on {window}{margin}")
    alias = CHAMPION if promoted else CHALLENGER
    client.set_registered_model_alias(name, alias, version)
    client.set_model_version_tag(name, version, "promotion", f"{alias}: {reason}")
    client.set_model_version_tag(name, version, f"holdout_{metric}", f"{new:.6g}")
    mlflow.set_tag("promotion", f"{alias}: {reason}")
    return alias, reason
