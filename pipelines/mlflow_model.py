"""The MLflow pyfunc flavour of a fitted ``SiteForecaster``.

``predict`` takes ready-built feature rows (the signature lists them, ``lead_minutes``
included) and returns one column per quantile level of the grid. The serving layer unwraps
the forecaster (``unwrap_python_model().forecaster``) to build features itself from the data
known at the issue time.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import mlflow.pyfunc
import pandas as pd

# Packages the model needs at load time, pinned to the versions that trained it.
RUNTIME_PACKAGES = ("lightgbm", "scikit-learn", "pandas", "numpy", "scipy", "holidays", "pvlib",
                    "pyarrow", "mlflow", "cloudpickle")


class ForecasterModel(mlflow.pyfunc.PythonModel):
    def __init__(self, forecaster):
        self.forecaster = forecaster

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        del context, params
        return self.forecaster.predict_features(model_input)


def pip_requirements() -> list[str]:
    reqs = []
    for name in RUNTIME_PACKAGES:
        try:
            reqs.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            continue
    return reqs
