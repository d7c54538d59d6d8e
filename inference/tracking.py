"""Where registered models are read from: the tracking URI, registry names and aliases, and
whether the store answers. Read side only; runs and registrations are written by
``pipelines.tracking``.

The tracking URI comes from ``MLFLOW_TRACKING_URI``; when it is unset the default is a local
sqlite store ``var/mlflow/mlflow.db`` under the current directory (``make`` runs from the
project root). A site's model is registered as ``<kind>-<site_id>`` (``load-load_c01``); the
alias ``champion`` marks the version that serves, ``challenger`` the latest that did not
beat it on the same held-out window.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # mlflow is imported where it is used: `vpp --help` need not load it
    from mlflow import MlflowClient

CHAMPION = "champion"
CHALLENGER = "challenger"


class TrackingUnavailableError(RuntimeError):
    """The MLflow tracking store cannot be reached or opened."""


def default_tracking_uri() -> str:
    return f"sqlite:///{Path.cwd() / 'var' / 'mlflow' / 'mlflow.db'}"


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()


def registered_name(kind: str, site_id: str) -> str:
    return f"{kind}-{site_id}"


def check_reachable(client: MlflowClient, uri: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.search_experiments(max_results=1)
    except (MlflowException, OSError, ConnectionError) as err:
        raise TrackingUnavailableError(
            f"MLflow tracking store {uri} cannot be reached ({type(err).__name__}: "
            f"{str(err).splitlines()[0][:200]}); start the server or set MLFLOW_TRACKING_URI "
            "to a reachable store (default: the local sqlite file var/mlflow/mlflow.db)"
        ) from err
    except Exception as err:  # requests' errors and the like from an http store
        if "Connection" in type(err).__name__ or "Timeout" in type(err).__name__:
            raise TrackingUnavailableError(
                f"MLflow tracking server {uri} is unreachable ({type(err).__name__}); start it "
                "or set MLFLOW_TRACKING_URI"
            ) from err
        raise
