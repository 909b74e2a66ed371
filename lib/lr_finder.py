"""The learning-rate finder run behind ``Learner.lr_find``.

It trains for up to ``num_it`` batches with an exponentially rising learning rate, then puts the
model weights, the optimizer state, the RNG states and the recorder back exactly as they were.
"""
from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator, Sequence

from fastlearn.schedule import LRFinder, suggestion_tuple, valley
from fastlearn.torch_core import get_rng_states, set_rng_states
from fastlearn.tracker import TerminateOnNaN


@contextlib.contextmanager
def training_state_kept(learn) -> Iterator[None]:
    """Run the block (a short trial fit), then put back the model weights, the optimizer state, the
    frozen parameters, the RNG states, the epoch count and the recorder exactly as they were."""
    if learn.opt is None:
        learn.create_opt()
    model_state = copy.deepcopy(learn.model.state_dict())
    opt_states = [copy.deepcopy(opt.state_dict()) for opt in learn.opts]
    requires_grad = [p.requires_grad for p in learn.model.parameters()]
    rng_states = get_rng_states()
    epochs_done = learn.epochs_done
    recorder_state = {k: copy.copy(v) for k, v in vars(learn.recorder).items() if k != "learn"}
    try:
        yield
    finally:
        learn.model.load_state_dict(model_state)
        for opt, state in zip(learn.opts, opt_states):
            opt.load_state_dict(state)
        for param, flag in zip(learn.model.parameters(), requires_grad):
            param.requires_grad_(flag)
        set_rng_states(rng_states)
        learn.epochs_done = epochs_done
        for key, value in recorder_state.items():
            setattr(learn.recorder, key, value)


def run_lr_find(learn, finder: LRFinder, show_plot: bool = True,
                suggest_funcs: Sequence[Callable] | None = None):
    """Run ``finder`` on ``learn``, restore everything, and return the suggestions."""
    suggest_funcs = tuple(suggest_funcs) if suggest_funcs is not None else (valley,)
    n_epoch = -(-finder.num_it // max(1, len(learn.dls.train)))
    try:
        # the finder decides itself when a rising loss (NaN included) ends the run
        stop_on_nan = [cb for cb in learn.cbs if isinstance(cb, TerminateOnNaN)]
        with training_state_kept(learn), learn.no_logging(), learn.removed_cbs(stop_on_nan):
            learn.fit(n_epoch, cbs=[finder])
    finally:
        learn.lr_finder_result = (list(finder.lrs), list(finder.losses))
    lrs, losses = finder.lrs, finder.losses
    lo = len(lrs) // 10
    hi = len(lrs) - 5 if len(lrs) - lo > 10 else len(lrs)
    lrs_cut, losses_cut = lrs[lo:hi], losses[lo:hi]
    if len(lrs_cut) < 2:
        raise ValueError(f"lr_find ran only {len(lrs)} batches, too few to suggest a learning rate; "
                         "use more data, a smaller batch size or a larger num_it")
    results = {func.__name__: func(lrs_cut, losses_cut, finder.num_it) for func in suggest_funcs}
    if show_plot:
        learn.recorder.plot_lr_find(lrs, losses, suggestions={k: v[1] for k, v in results.items()})
    return suggestion_tuple(list(results))(*[v[0] for v in results.values()])
