"""Progress bars (fastprogress: console or notebook) and the per-epoch metrics table.

``ProgressCallback`` is added to every Learner; ``with learn.no_bar():`` hides the bars.
"""
from __future__ import annotations

import time

from fastprogress.fastprogress import NBMasterBar, master_bar, progress_bar

from fastlearn.callback import Callback


def _format_value(value) -> str:
    if value is None:
        return "None"
    if isinstance(value, float):
        return f"{value:.6f}"
    return str(value)


class ProgressCallback(Callback):
    """Shows a bar over epochs and one over batches, and writes the metrics table under them.
    The batch bar and its loss are refreshed at most every ``refresh_s`` seconds (and at the last
    batch of a phase)."""

    order = 60
    refresh_s = 0.25

    def before_fit(self):
        self.master = master_bar(range(self.n_epoch - self.learn.start_epoch)) if self.n_epoch else None
        if self.master is not None:
            self.master.on_iter_begin()
            self.master.update(0)  # started here: a callback may cancel the first epoch before it begins
        self.learn.logger = self._write

    def _write(self, row: list, header: bool = False) -> None:
        cells = [_format_value(v) for v in row]
        if isinstance(self.master, NBMasterBar):
            self.master.write(cells, table=True)  # an HTML table in a notebook
            return
        if header:
            self.widths = [max(8, len(cell)) for cell in cells]
        widths = getattr(self, "widths", [len(cell) for cell in cells])
        # every column at least as wide as its header, and always two spaces between columns
        line = "  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip()
        if self.master is not None:
            self.master.write(line)
        else:
            print(line)

    def before_train(self):
        self._bar(self.learn.dl)  # the loader this phase runs (overfit_batches replays a few batches)

    def before_validate(self):
        self._bar(self.learn.dl)

    def _bar(self, dl):
        self.bar = progress_bar(dl, parent=self.master, leave=False)
        self.bar.update(0)
        self._next_refresh = 0.0  # the first batch is shown at once

    def after_batch(self):
        # refreshed on a timer, not every batch: reading the loss waits for the device, and
        # drawing the bar costs more than a small model's step
        now = time.monotonic()
        if now < self._next_refresh and self.iter + 1 != self.n_iter:
            return
        self._next_refresh = now + self.refresh_s
        if self.training:
            self.bar.comment = f"{float(self.learn.smooth_loss):.4f}"
        self.bar.update(self.iter + 1)

    def _end_bar(self) -> None:
        bar, self.bar = getattr(self, "bar", None), None
        if bar is not None:
            bar.on_iter_end()

    def after_train(self):
        self._end_bar()

    def after_validate(self):
        self._end_bar()

    def before_epoch(self):
        if self.master is not None:
            self.master.update(self.epoch - self.learn.start_epoch)

    def cleanup(self):
        """After the fit, or any exception: the bars are closed and the plain logger is back."""
        self._end_bar()
        master, self.master = getattr(self, "master", None), None
        if master is not None:
            master.on_iter_end()
        self.learn.logger = print_table_row


def print_table_row(row: list, header: bool = False) -> None:
    """The logger used without a progress bar: one tab-separated line per row."""
    print("\t".join(_format_value(v) for v in row))
