"""``WandbCallback``: losses, learning rates and metrics in a Weights & Biases run (the ``wandb``
extra: ``pip install 'fastlearn[wandb]'``), online or offline.

>>> learn.fit_one_cycle(3, cbs=WandbCallback(project="pets", mode="offline"))   # doctest: +SKIP

Offline runs are written under ``dir/wandb/offline-run-*`` and uploaded later with ``wandb sync``.
Without an active run the callback starts one (with ``project``, ``name``, ``mode``, ``dir`` and
the fit's settings as its config) and finishes it when the fit ends. To log several fits in one
run (``fine_tune`` makes two), call ``wandb.init(...)`` first and ``wandb.finish()`` after: a run
the callback did not start is left open.
"""
from __future__ import annotations

from pathlib import Path

from fastlearn.callback.logger import ExperimentLogger, run_config
from fastlearn.foundation import import_optional

__all__ = ["WandbCallback"]


class WandbCallback(ExperimentLogger):
    """Logs to the active W&B run, or to one it starts and finishes (``mode="offline"`` writes
    locally under ``dir``, default ``learn.path``).

    >>> WandbCallback(project="demo", mode="offline").mode   # doctest: +SKIP
    'offline'
    """

    def __init__(self, project: str | None = None, name: str | None = None, mode: str | None = None,
                 dir: str | Path | None = None, config: dict | None = None, log_every: int = 1):
        super().__init__(log_every=log_every)
        self.wandb = import_optional("wandb", "wandb", "WandbCallback")
        self.project, self.run_name, self.mode, self.dir, self.config = project, name, mode, dir, config
        self.run = None
        self.own_run = False

    def start(self) -> None:
        wandb = self.wandb
        config = {**run_config(self.learn), **(self.config or {})}
        if wandb.run is not None:
            self.run, self.own_run = wandb.run, False
            self.run.config.update(config, allow_val_change=True)
            return
        folder = Path(self.dir) if self.dir is not None else Path(self.learn.path)
        folder.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(project=self.project, name=self.run_name, mode=self.mode, dir=str(folder),
                              config=config)
        self.own_run = True

    def write(self, values: dict[str, float], step: int) -> None:
        self.run.log(values, step=step)

    def finish(self, failed: bool) -> None:
        if self.run is not None and self.own_run:
            self.run.finish(exit_code=1 if failed else 0)
        self.run = None
