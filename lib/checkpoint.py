"""Complete, atomic checkpoints: ``learn.save`` / ``learn.load``.

A checkpoint holds the model, the optimizer (and where it was in the run: the epoch and the
training iteration, so schedules continue), the RNG states of Python, NumPy and torch, and the
state of every callback that has ``state_dict`` / ``load_state_dict`` (a gradient scaler, say).
It is written to a temporary file in the same folder and renamed (:mod:`fastlearn.atomic`), so a
crash while saving never leaves a half-written file under the real name, and the next save removes
the temporary files a killed save left. Loading checks that everything in the file fits the
learner (the model's tensor names and shapes, the optimizer's groups and state) before it changes
anything: a checkpoint that does not fit raises and leaves the learner as it was.
"""
from __future__ import annotations

import io
import pickle
import warnings
from pathlib import Path

import torch

from fastlearn.atomic import atomic_write_bytes
from fastlearn.debugging import skip_write
from fastlearn.torch_core import get_rng_states, set_rng_states

FORMAT_VERSION = 1


def checkpoint_path(learn, name) -> Path:
    """``name`` as given if it is a path with a suffix, else ``learn.path/model_dir/name.pth``
    (``~`` is the home folder, not a folder named ``~``)."""
    name = Path(name).expanduser()
    if name.suffix:
        return name if name.is_absolute() else (Path(learn.path) / learn.model_dir / name).expanduser()
    return (Path(learn.path) / learn.model_dir / f"{name}.pth").expanduser()


def _plain_rng(states: dict) -> dict:
    """RNG states as tensors / lists only, so the file loads with ``weights_only=True``."""
    version, state, gauss = states["python"]
    name, keys, pos, has_gauss, cached = states["numpy"]
    plain = {"python": [version, list(state), gauss],
             "numpy": [name, torch.from_numpy(keys.astype("int64")), pos, has_gauss, cached],
             "torch": states["torch"]}
    if "cuda" in states:
        plain["cuda"] = list(states["cuda"])
    return plain


def _restore_rng(plain: dict) -> dict:
    import numpy as np
    version, state, gauss = plain["python"]
    name, keys, pos, has_gauss, cached = plain["numpy"]
    states = {"python": (version, tuple(state), gauss),
              "numpy": (name, keys.cpu().numpy().astype(np.uint32), pos, has_gauss, cached),
              "torch": plain["torch"].cpu()}  # loading with map_location="cuda" moved them
    if "cuda" in plain:
        states["cuda"] = [state.cpu() for state in plain["cuda"]]
    return states


def unwrapped_model(learn) -> torch.nn.Module:
    """The model without a ``DistributedDataParallel`` (or compile) wrapper."""
    model = learn.model
    while hasattr(model, "module") and isinstance(model.module, torch.nn.Module):
        model = model.module
    return getattr(model, "_orig_mod", model)


def save_learner(learn, name, with_opt: bool = True) -> Path:
    """Write the learner's full state to ``checkpoint_path(learn, name)``; only rank 0 writes."""
    path = checkpoint_path(learn, name)
    if skip_write(learn, "checkpoint", path):
        return path
    state = {
        "format": FORMAT_VERSION,
        "model": unwrapped_model(learn).state_dict(),
        "epoch": int(learn.epoch),
        "train_iter": int(getattr(learn, "train_iter", 0)),
        "epochs_done": int(getattr(learn, "epochs_done", 0)),
        "rng": _plain_rng(get_rng_states()),
        "callbacks": {cb.name: cb.state_dict() for cb in learn.cbs if callable(getattr(cb, "state_dict", None))},
    }
    if with_opt and learn.opt is not None:
        state["opt"] = learn.opt.state_dict()
        state["extra_opts"] = [opt.state_dict() for opt in getattr(learn, "extra_opts", [])]
    if getattr(learn, "is_main_process", True):
        buffer = io.BytesIO()
        torch.save(state, buffer)
        atomic_write_bytes(path, buffer.getvalue())
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()  # every rank can load the file once save returns
    return path


# optimizer state entries that have their parameter's shape
_PER_PARAM_STATE = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq", "momentum_buffer", "square_avg", "acc_delta",
                    "sum", "exp_inf", "grad_avg")


def _check_model_fits(model: torch.nn.Module, saved, strict: bool, path: Path) -> None:
    if not isinstance(saved, dict) or not all(isinstance(v, torch.Tensor) for v in saved.values()):
        raise ValueError(f"checkpoint {path} holds no model weights (a dict of tensors); nothing was loaded")
    current = model.state_dict()
    wrong = [f"{k}: {tuple(saved[k].shape)} in the file, {tuple(v.shape)} in the model"
             for k, v in current.items() if k in saved and saved[k].shape != v.shape]
    missing, unexpected = sorted(set(current) - set(saved)), sorted(set(saved) - set(current))
    problems = wrong[:5]
    if strict and missing:
        problems.append(f"missing {missing[:5]}")
    if strict and unexpected:
        problems.append(f"unexpected {unexpected[:5]}")
    if problems:
        hint = "" if wrong else ", or pass strict=False to load only the tensors whose names match"
        raise ValueError(f"checkpoint {path} does not fit this learner's model ({'; '.join(problems)}); nothing "
                         "was loaded. Build the learner with the architecture and number of outputs it was saved "
                         f"with{hint}")
    if not strict and current and not set(current) & set(saved):
        raise ValueError(f"checkpoint {path} has no tensor whose name is in this learner's model (the file has "
                         f"{sorted(saved)[:3]}..., the model {sorted(current)[:3]}...), so strict=False would load "
                         "nothing; nothing was loaded. Build the learner with the architecture it was saved with")
    if not strict and missing:
        warnings.warn(f"learn.load(strict=False): {len(missing)} of the model's {len(current)} tensors are not in "
                      f"{path} and keep their values ({missing[:5]}{'...' if len(missing) > 5 else ''})",
                      UserWarning, stacklevel=4)


def _splitter_count(groups: list) -> int:
    """The number of splitter groups (body, head...) behind torch param groups (see ``split_groups``)."""
    tags = [g.get("fl_group") for g in groups if isinstance(g, dict)]
    if tags and all(isinstance(t, int) for t in tags):
        return max(tags) + 1
    return len(groups)


def _check_opt_fits(opt: torch.optim.Optimizer, saved, path: Path) -> None:
    groups = opt.param_groups
    saved_groups = saved.get("param_groups") if isinstance(saved, dict) else None
    advice = ("nothing was loaded. Build the learner with the splitter it was saved with, or load the weights "
              "only: learn.load(name, with_opt=False)")
    if not isinstance(saved_groups, list) or len(saved_groups) != len(groups):
        n_saved = _splitter_count(saved_groups) if isinstance(saved_groups, list) else "no"
        raise ValueError(f"the optimizer state in {path} has {n_saved} parameter groups and this learner's optimizer "
                         f"has {_splitter_count(groups)}; {advice}")
    by_id = {}
    for i, (group, saved_group) in enumerate(zip(groups, saved_groups)):
        ids = saved_group.get("params", []) if isinstance(saved_group, dict) else []
        if len(ids) != len(group["params"]):
            raise ValueError(f"parameter group {i} of the optimizer state in {path} has {len(ids)} parameters and "
                             f"this learner's has {len(group['params'])}; {advice}")
        by_id.update(zip(ids, group["params"]))
    for key, param_state in (saved.get("state") or {}).items():
        param = by_id.get(key)
        if param is None:
            raise ValueError(f"the optimizer state in {path} has state for a parameter {key!r} that no group "
                             f"holds; {advice}")
        for name, value in param_state.items():
            if name in _PER_PARAM_STATE and isinstance(value, torch.Tensor) and value.shape != param.shape:
                raise ValueError(f"the optimizer state {name!r} of parameter {key} in {path} has shape "
                                 f"{tuple(value.shape)}, its parameter {tuple(param.shape)}; {advice}")


def load_learner_state(learn, name, with_opt: bool = True, strict: bool = True) -> None:
    """Restore what :func:`save_learner` wrote, all or nothing: everything in the file is checked
    against the learner first, and a file that does not fit (or is damaged) raises a clear error
    and leaves the learner as it was."""
    path = checkpoint_path(learn, name)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}; learn.save({Path(name).stem!r}) writes one there")
    try:
        state = torch.load(path, map_location=learn.device, weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, OSError) as error:
        raise ValueError(f"checkpoint {path} could not be read ({error}); the file is damaged or "
                         "truncated: save it again or use an earlier checkpoint") from error
    if isinstance(state, dict) and "description" in state and "state_dict" in state:
        raise ValueError(f"{path} is an export (written by learn.export()), not a checkpoint; nothing was loaded. Load "
                         f"it with load_learner({str(path)!r}), or pass learn.load a file learn.save() wrote")
    if not isinstance(state, dict) or "model" not in state:
        state = {"model": state}
    model = unwrapped_model(learn)
    _check_model_fits(model, state["model"], strict, path)
    load_opt = with_opt and "opt" in state
    made_opt = load_opt and learn.opt is None
    if made_opt:
        learn.create_opt()
    try:
        if load_opt:
            _check_opt_fits(learn.opt, state["opt"], path)
            extra, extra_opts = state.get("extra_opts", []), getattr(learn, "extra_opts", [])
            if len(extra) != len(extra_opts):
                raise ValueError(f"checkpoint {path} holds {len(extra)} extra optimizer(s) and this learner has "
                                 f"{len(extra_opts)} (learn.extra_opts); nothing was loaded. Load the weights "
                                 "only: learn.load(name, with_opt=False)")
            for opt, saved in zip(extra_opts, extra):
                _check_opt_fits(opt, saved, path)
        rng = _restore_rng(state["rng"]) if "rng" in state else None
    except (KeyError, TypeError, AttributeError) as error:
        if made_opt:
            learn.opt = None
        raise ValueError(f"checkpoint {path} is damaged ({type(error).__name__}: {error}); nothing was "
                         "loaded") from error
    except BaseException:
        if made_opt:
            learn.opt = None
        raise
    model.load_state_dict(state["model"], strict=strict)
    if load_opt:
        learn.opt.load_state_dict(state["opt"])
        for opt, saved in zip(getattr(learn, "extra_opts", []), state.get("extra_opts", [])):
            opt.load_state_dict(saved)
    if "epoch" in state:
        learn.epoch = state["epoch"]
        learn.train_iter = state.get("train_iter", 0)
        learn.epochs_done = state.get("epochs_done", learn.epoch + 1)
    if rng is not None:
        set_rng_states(rng)
    for cb in learn.cbs:
        saved = state.get("callbacks", {}).get(cb.name)
        if saved is not None and callable(getattr(cb, "load_state_dict", None)):
            cb.load_state_dict(saved)
