"""Reading registered models (no writes): the champion of a site, with its version.

Used by ``vpp forecast``, the nightly batch and the BentoML service. A loaded model is
cached per (name, version); the alias is looked up again on each call (a few ms on
sqlite), so a newly promoted champion serves without a restart.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import mlflow
import mlflow.artifacts
import mlflow.pyfunc
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from forecasting.errors import ModelNotFoundError
from pipelines.tracking import CHAMPION, check_reachable, registered_name, tracking_uri


@dataclass(frozen=True)
class LoadedModel:
    name: str
    version: str
    forecaster: object

    @property
    def label(self) -> str:
        return f"{self.name}/{self.version}"


class ModelRegistry:
    """Champion lookup against one tracking/registry URI (never changes the global URI)."""

    def __init__(self, uri: str | None = None):
        self.uri = uri or tracking_uri()
        self._client: MlflowClient | None = None
        self._cache: dict[tuple[str, str], object] = {}
        self._lock = threading.Lock()

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
            check_reachable(client, self.uri)
            self._client = client
        return self._client

    def load(self, name: str, alias: str = CHAMPION, hint: str = "") -> tuple[str, object]:
        """(version, unwrapped python model) of ``name@alias``; ModelNotFoundError if none."""
        try:
            mv = self.client.get_model_version_by_alias(name, alias)
        except MlflowException as err:
            raise ModelNotFoundError(
                f"no model registered as {name!r} with alias {alias!r} in {self.uri}"
                + (f"; {hint}" if hint else "")) from err
        key = (name, str(mv.version))
        with self._lock:
            if key not in self._cache:
                # the version's own artifact location: a ``models:/`` URI would be resolved
                # against the process-wide registry URI, not this registry's
                source = self.client.get_model_version_download_uri(name, mv.version)
                local = mlflow.artifacts.download_artifacts(artifact_uri=source,
                                                            tracking_uri=self.uri)
                self._cache[key] = mlflow.pyfunc.load_model(local).unwrap_python_model()
            return key[1], self._cache[key]

    def champion(self, kind: str, site_id: str, alias: str = CHAMPION) -> LoadedModel:
        """The site forecaster under ``alias`` of ``<kind>-<site_id>``."""
        name = registered_name(kind, site_id)
        version, model = self.load(name, alias, hint=f"train one with `vpp train --kind {kind} "
                                                      f"--site {site_id}`")
        return LoadedModel(name, version, model.forecaster)
