"""Reading registered models (no writes): the one model source of the service, the batch
and the command line.

``champion(kind, site_id)`` is a site's forecaster, ``baseline(name)`` an ML baseline,
``response()`` the response-likelihood champion; each with its version. The models handed
out are shared between requests and only read: forecasters and the response model predict
without changing state, and an ML baseline takes a request's history through
``with_history``, which returns a copy.

A loaded model is cached per (name, version). Which version an alias names is looked up again after
``ttl_s`` seconds (0, the default of the command line: on every call; the service keeps
it for a few seconds and refreshes it in a background thread, so requests do not wait
for the registry and a moved champion is picked up without a restart).

Faults are told apart, each a typed error with what to do:

- no such model or alias: ``ModelNotFoundError`` (train one);
- the registry cannot answer (unreachable server, corrupt or missing store):
  ``RegistryUnavailableError``;
- a registered version whose artifacts cannot be loaded: ``ModelArtifactError``.

When the registry fails but a version of that name was loaded before, that version keeps
answering and ``LoadedModel.note`` says so (the caller puts the note in its answer);
``state()`` reports the registry's last lookup for ``/readyz``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import mlflow
import mlflow.artifacts
import mlflow.pyfunc
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from forecasting.errors import ModelNotFoundError
from inference.response_data import REGISTERED_NAME as RESPONSE_NAME
from inference.response_data import Champion
from inference.tracking import (
    CHAMPION,
    TrackingUnavailableError,
    check_reachable,
    registered_name,
    tracking_uri,
)

log = logging.getLogger(__name__)
NOT_FOUND_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST"})


class RegistryUnavailableError(TrackingUnavailableError):
    """The model registry cannot answer: unreachable, or its store is corrupt or missing."""

    def __init__(self, message: str, reason: str = ""):
        super().__init__(message)
        self.reason = reason or message


class ModelArtifactError(TrackingUnavailableError):
    """A registered model version whose artifacts cannot be downloaded or loaded."""


@dataclass(frozen=True)
class LoadedModel:
    name: str
    version: str
    forecaster: object  # the site forecaster (``champion``) or the unwrapped python model
    note: str = ""  # set when an earlier loaded version answers because of a registry fault

    @property
    def label(self) -> str:
        return f"{self.name}/{self.version}"


@dataclass(frozen=True)
class RegistryState:
    """The registry's last answer, for ``/readyz``."""

    status: str  # "ok", "unavailable" or "unknown" (not asked yet)
    checked_at: float | None  # epoch seconds of the last lookup
    last_ok_at: float | None
    error: str
    models_loaded: int


def _not_found(err: MlflowException) -> bool:
    code = getattr(err, "error_code", "")
    text = str(err)
    return code in NOT_FOUND_CODES or (code == "INVALID_PARAMETER_VALUE" and "alias" in text
                                       and "not found" in text)


def _first_line(err: BaseException) -> str:
    return f"{type(err).__name__}: {(str(err).splitlines() or [''])[0][:200]}"


class ModelRegistry:
    """Champion lookup against one tracking/registry URI (never changes the global URI)."""

    def __init__(self, uri: str | None = None, ttl_s: float = 0.0):
        self.uri = uri or tracking_uri()
        self.ttl_s = ttl_s
        self._client: MlflowClient | None = None
        self._cache: dict[tuple[str, str], object] = {}
        self._versions: dict[tuple[str, str], tuple[str, float]] = {}  # (name, alias) -> (v, t)
        self._lock = threading.Lock()
        self._load_lock = threading.Lock()
        self._state = RegistryState("unknown", None, None, "", 0)
        self._refresher: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
            check_reachable(client, self.uri)
            self._client = client
        return self._client

    # -- lookups --------------------------------------------------------------------------

    def load(self, name: str, alias: str = CHAMPION, hint: str = "") -> tuple[str, object]:
        """(version, unwrapped python model) of ``name@alias`` (see ``load_model``)."""
        loaded = self.load_model(name, alias, hint)
        return loaded.version, loaded.forecaster

    def load_model(self, name: str, alias: str = CHAMPION, hint: str = "") -> LoadedModel:
        """The python model under ``name@alias``; the typed errors of the module doc."""
        key = (name, alias)
        with self._lock:
            known = self._versions.get(key)
        if known is not None and self.ttl_s > 0 and time.monotonic() - known[1] < self.ttl_s:
            cached = self._cache.get((name, known[0]))
            if cached is not None:
                return LoadedModel(name, known[0], cached)
        try:
            version = self._resolve(name, alias, hint)
        except RegistryUnavailableError as err:
            if known is not None and (name, known[0]) in self._cache:
                log.warning("registry unavailable; %s/%s (loaded earlier) answers: %s", name,
                            known[0], err)
                return LoadedModel(name, known[0], self._cache[(name, known[0])],
                                   note=f"model registry unavailable ({err.reason}); "
                                        f"answered by {name}/{known[0]}, the version "
                                        "loaded before")
            raise
        try:
            model = self._artifacts(name, version)
        except ModelArtifactError as err:
            if known is not None and known[0] != version and (name, known[0]) in self._cache:
                log.error("%s; %s/%s (loaded earlier) answers", err, name, known[0])
                return LoadedModel(name, known[0], self._cache[(name, known[0])],
                                   note=f"{name}/{version} cannot be loaded; answered by "
                                        f"{name}/{known[0]}, the version loaded before")
            raise
        with self._lock:
            self._versions[key] = (version, time.monotonic())
        return LoadedModel(name, version, model)

    def peek_champion(self, kind: str, site_id: str, alias: str = CHAMPION
                      ) -> LoadedModel | None:
        """The site forecaster under ``alias`` if it is loaded and its version was looked up
        within ``ttl_s``, else None; never asks the registry (no I/O: safe on an event
        loop)."""
        name = registered_name(kind, site_id)
        with self._lock:
            known = self._versions.get((name, alias))
        if known is None or self.ttl_s <= 0 or time.monotonic() - known[1] >= self.ttl_s:
            return None
        cached = self._cache.get((name, known[0]))
        return None if cached is None else LoadedModel(name, known[0], cached.forecaster)

    def champion(self, kind: str, site_id: str, alias: str = CHAMPION) -> LoadedModel:
        """The site forecaster under ``alias`` of ``<kind>-<site_id>``."""
        name = registered_name(kind, site_id)
        loaded = self.load_model(name, alias, hint=f"train one with `vpp train --kind {kind} "
                                                   f"--site {site_id}`")
        return LoadedModel(name, loaded.version, loaded.forecaster.forecaster, loaded.note)

    def baseline(self, name: str, alias: str = CHAMPION):
        """The ``MLBaseline`` registered as ``name`` (``baseline-pooled``,
        ``baseline-<customer>``). Shared between requests: a request gives it its own
        history with ``with_history``, which returns a copy."""
        return self.load_model(name, alias, hint="train one with `vpp baseline-train "
                                                 "--data DIR`").forecaster.baseline

    def response(self, alias: str = CHAMPION) -> Champion:
        """The ``response-likelihood`` champion: the customer model, its version and the
        per-resource model (None where the resources' historical rate answers)."""
        loaded = self.load_model(RESPONSE_NAME, alias,
                                 hint="train one with `vpp response-train --data DIR`")
        wrapped = loaded.forecaster
        return Champion(wrapped.model, loaded.version, getattr(wrapped, "resource_model", None),
                        getattr(wrapped, "resource_method", None))

    def _resolve(self, name: str, alias: str, hint: str) -> str:
        """The version ``alias`` names now (one registry query)."""
        try:
            mv = self.client.get_model_version_by_alias(name, alias)
        except TrackingUnavailableError as err:
            self._note(_first_line(err))
            raise RegistryUnavailableError(str(err), _first_line(err)) from err
        except MlflowException as err:
            if _not_found(err):
                self._note(None)
                with self._lock:
                    self._versions.pop((name, alias), None)  # an alias removed stays removed
                raise ModelNotFoundError(
                    f"no model registered as {name!r} with alias {alias!r}"
                    + (f"; {hint}" if hint else "")) from err
            raise self._unavailable(err) from err
        except Exception as err:  # a driver or connection error not wrapped by MLflow
            raise self._unavailable(err) from err
        self._note(None)
        return str(mv.version)

    def _artifacts(self, name: str, version: str) -> object:
        key = (name, version)
        model = self._cache.get(key)
        if model is not None:
            return model
        with self._load_lock:  # one download per version, even under concurrent requests
            if key in self._cache:
                return self._cache[key]
            try:
                # the version's own artifact location: a ``models:/`` URI would be resolved
                # against the process-wide registry URI, not this registry's
                source = self.client.get_model_version_download_uri(name, version)
                local = mlflow.artifacts.download_artifacts(artifact_uri=source,
                                                            tracking_uri=self.uri)
                model = mlflow.pyfunc.load_model(local).unwrap_python_model()
            except Exception as err:
                raise ModelArtifactError(
                    f"{name}/{version} is registered but its artifacts cannot be loaded "
                    f"({_first_line(err)}); re-register it (train again) or move the alias "
                    "to a version whose artifacts exist") from err
            self._cache[key] = model
            return model

    def _unavailable(self, err: BaseException) -> RegistryUnavailableError:
        reason = _first_line(err)
        self._note(reason)
        return RegistryUnavailableError(
            f"the model registry cannot answer ({reason}): it is unreachable or its store is "
            "corrupt; check MLFLOW_TRACKING_URI and the store, not the model", reason)

    def _note(self, error: str | None) -> None:
        now = time.time()
        with self._lock:
            last_ok = now if error is None else self._state.last_ok_at
            self._state = RegistryState("ok" if error is None else "unavailable", now, last_ok,
                                        error or "", len(self._cache))

    # -- state and refresh ----------------------------------------------------------------

    def state(self) -> RegistryState:
        with self._lock:
            s = self._state
            return RegistryState(s.status, s.checked_at, s.last_ok_at, s.error, len(self._cache))

    def probe(self) -> RegistryState:
        """One cheap query, to know the registry's state before any model was asked for."""
        try:
            self.client.search_registered_models(max_results=1)
        except Exception as err:  # noqa: BLE001 - any failure is the state reported
            self._unavailable(err.__cause__ or err if isinstance(err, TrackingUnavailableError)
                              else err)
        else:
            self._note(None)
        return self.state()

    def refresh(self) -> None:
        """Look every alias asked for so far up again and load a moved one (background)."""
        with self._lock:
            keys = list(self._versions)
        if not keys:
            self.probe()
        for name, alias in keys:
            try:
                version = self._resolve(name, alias, "")
                self._artifacts(name, version)
            except ModelNotFoundError:
                continue
            except (RegistryUnavailableError, ModelArtifactError) as err:
                log.warning("registry refresh: %s", err)
                return  # keep what is loaded; the next round tries again
            with self._lock:
                self._versions[(name, alias)] = (version, time.monotonic())

    def start_refresh(self) -> None:
        """Refresh every ``ttl_s / 2`` seconds in a daemon thread (idempotent)."""
        if self.ttl_s <= 0 or self._refresher is not None:
            return

        def loop():
            while not self._stop.wait(self.ttl_s / 2):
                try:
                    self.refresh()
                except Exception:  # never let the thread die silently
                    log.exception("registry refresh failed")

        self._refresher = threading.Thread(target=loop, name="registry-refresh", daemon=True)
        self._refresher.start()

    def stop_refresh(self) -> None:
        self._stop.set()
