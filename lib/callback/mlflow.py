"""``MLflowCallback``: parameters, losses, learning rates and metrics in an MLflow run (the
``mlflow`` extra: ``pip install 'fastlearn[mlflow]'``), through ``MlflowClient`` so nothing global
is changed.

>>> learn.fit_one_cycle(3, cbs=MLflowCallback(experiment_name="pets"))   # doctest: +SKIP

The tracking store is ``tracking_uri``, else the ``MLFLOW_TRACKING_URI`` environment variable,
else a local file store in ``learn.path/mlruns`` (``mlflow ui --backend-store-uri <that folder>``).
MLflow 3 keeps the file store in maintenance and asks for ``MLFLOW_ALLOW_FILE_STORE=true`` to use
it; the callback opts in for the store it chooses itself. For a database store pass
``tracking_uri="sqlite:///mlflow.db"`` (MLflow then needs ``sqlalchemy`` and ``alembic``).
Values are sent once per epoch (and when the fit ends), in batches.
With an active run (``mlflow.start_run()``) the callback logs into it and leaves it open;
otherwise it starts a run for the fit and ends it (FINISHED, or FAILED after an exception).
"""
from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

from fastlearn.callback.logger import ExperimentLogger, run_config
from fastlearn.foundation import import_optional

__all__ = ["MLflowCallback"]


class MLflowCallback(ExperimentLogger):
    """Logs the fit's settings as parameters and every value as a metric with its step.

    >>> MLflowCallback(experiment_name="demo").experiment_name   # doctest: +SKIP
    'demo'
    """

    def __init__(self, experiment_name: str = "fastlearn", run_name: str | None = None,
                 tracking_uri: str | None = None, log_every: int = 1):
        super().__init__(log_every=log_every)
        self.mlflow = import_optional("mlflow", "mlflow", "MLflowCallback")
        self.experiment_name, self.run_name, self.tracking_uri = experiment_name, run_name, tracking_uri
        self.client = None
        self.run_id: str | None = None
        self.own_run = False

    @property
    def uri(self) -> str:
        """The tracking store used."""
        if self.tracking_uri is not None:
            return self.tracking_uri
        if os.environ.get("MLFLOW_TRACKING_URI"):
            return os.environ["MLFLOW_TRACKING_URI"]
        return self.default_uri

    @property
    def default_uri(self) -> str:
        """The local file store ``learn.path/mlruns``."""
        return (Path(self.learn.path) / "mlruns").resolve().as_uri()

    def start(self) -> None:
        mlflow = self.mlflow
        active = mlflow.active_run()
        self.pending = []
        if active is not None:
            self.client = mlflow.MlflowClient()
            self.run_id, self.own_run = active.info.run_id, False
        else:
            with _file_store_allowed(self.uri == self.default_uri):
                self.client = mlflow.MlflowClient(tracking_uri=self.uri)
                experiment = self.client.get_experiment_by_name(self.experiment_name)  # the store is made (once)
            experiment_id = (experiment.experiment_id if experiment is not None
                             else self.client.create_experiment(self.experiment_name))
            self.run_id = self.client.create_run(experiment_id, run_name=self.run_name).info.run_id
            self.own_run = True
        logged = self.client.get_run(self.run_id).data.params  # a parameter, once logged, cannot change
        params = [mlflow.entities.Param(key, str(value)[:500]) for key, value in run_config(self.learn).items()
                  if key not in logged]
        if params:
            self.client.log_batch(self.run_id, params=params)

    def write(self, values: dict[str, float], step: int) -> None:
        now = int(time.time() * 1000)
        self.pending += [self.mlflow.entities.Metric(key, value, now, step) for key, value in values.items()]

    def _send(self) -> None:
        for start in range(0, len(self.pending), 1000):  # MLflow takes at most 1000 metrics per call
            self.client.log_batch(self.run_id, metrics=self.pending[start:start + 1000])
        self.pending = []

    def after_epoch(self):
        super().after_epoch()
        if self.active:
            self._send()

    def finish(self, failed: bool) -> None:
        if self.client is None:
            return
        try:
            self._send()
        finally:
            if self.own_run:
                self.client.set_terminated(self.run_id, status="FAILED" if failed else "FINISHED")
            self.client = None


@contextlib.contextmanager
def _file_store_allowed(allow: bool) -> Iterator[None]:
    """MLflow's opt-in to its file store (in maintenance since MLflow 3), while the client makes
    the store; MLflow keeps that store for the URI afterwards."""
    previous = os.environ.get("MLFLOW_ALLOW_FILE_STORE")
    if allow and previous is None:
        os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    try:
        yield
    finally:
        if allow and previous is None:
            os.environ.pop("MLFLOW_ALLOW_FILE_STORE", None)
