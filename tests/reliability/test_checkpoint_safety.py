"""Checkpoints and exports: written with the user's umask, loaded all or nothing, and the temporary
files of killed saves removed by the next save (never a live writer's)."""
from __future__ import annotations

import copy
import os
import stat
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch
from torch import nn

from fastlearn.atomic import STALE_AFTER_S, temp_name
from fastlearn.data.databunch import DataBunch
from fastlearn.learner import Learner
from fastlearn.losses import MSELossFlat


def make_learner(path, n_out=1, splitter=None) -> Learner:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(48, 4, generator=gen)
    items = list(zip(x, x[:, :n_out]))
    dls = DataBunch.from_dsets(items[:32], items[32:], bs=8, device="cpu")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, n_out))
    kwargs = {"splitter": splitter} if splitter is not None else {}
    return Learner(dls, model, loss_func=MSELossFlat(), path=path, device="cpu", **kwargs)


def quiet_fit(learn, n_epoch=1):
    with learn.no_bar(), learn.no_logging():
        learn.fit(n_epoch)


@pytest.fixture
def umask():
    """Set the process umask for one test (``umask(0o027)``), restored afterwards."""
    previous = os.umask(0o022)
    yield os.umask
    os.umask(previous)


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_checkpoints_and_exports_get_the_users_umask(tmp_path, umask, tabular_export):
    learn = make_learner(tmp_path)
    assert _mode(learn.save("model")) == 0o644
    umask(0o027)
    assert _mode(learn.save("group_readable")) == 0o640
    umask(0o022)
    tab_learn, exported, _ = tabular_export
    assert _mode(exported) == 0o644
    # replacing a file keeps the mode its owner gave it
    exported.chmod(0o600)
    assert _mode(tab_learn.export("model.pkl")) == 0o600


def _state_of(learn) -> dict:
    return {"model": copy.deepcopy(learn.model.state_dict()),
            "opt": copy.deepcopy(learn.opt.state_dict()) if learn.opt is not None else None,
            "epoch": (learn.epoch, learn.train_iter, learn.epochs_done)}


def _assert_unchanged(learn, before) -> None:
    for key, value in before["model"].items():
        assert torch.equal(learn.model.state_dict()[key], value), f"{key} was changed by a failed load"
    if before["opt"] is None:
        assert learn.opt is None
    else:
        after = learn.opt.state_dict()
        assert after["param_groups"] == before["opt"]["param_groups"]
        for key, param_state in before["opt"]["state"].items():
            for name, value in param_state.items():
                assert torch.equal(after["state"][key][name], value), (key, name)
    assert (learn.epoch, learn.train_iter, learn.epochs_done) == before["epoch"]


def test_a_checkpoint_of_another_output_size_loads_nothing(tmp_path):
    saved = make_learner(tmp_path, n_out=2)
    quiet_fit(saved, 2)
    saved.save("two_outputs")
    learn = make_learner(tmp_path, n_out=1)
    quiet_fit(learn)
    before = _state_of(learn)
    torch.manual_seed(11)
    draw = torch.rand(2)
    torch.manual_seed(11)
    with pytest.raises(ValueError, match=r"does not fit this learner's model \(2\.weight: \(2, 8\) in the file, "
                                         r"\(1, 8\) in the model.*nothing was loaded"):
        learn.load("two_outputs")
    _assert_unchanged(learn, before)  # the first layer, which fits, was not replaced either
    torch.testing.assert_close(torch.rand(2), draw)  # nor the RNG
    with pytest.raises(ValueError, match="nothing was loaded"):
        learn.load("two_outputs", strict=False)  # a shape that differs never loads
    _assert_unchanged(learn, before)


def test_a_checkpoint_with_other_optimizer_groups_loads_nothing(tmp_path):
    def two_groups(model):
        return [list(model[0].parameters()), list(model[2].parameters())]

    saved = make_learner(tmp_path, splitter=two_groups)
    quiet_fit(saved, 2)
    saved.save("two_groups")
    learn = make_learner(tmp_path)
    quiet_fit(learn)
    before = _state_of(learn)
    with pytest.raises(ValueError, match=r"has 2 parameter groups and this learner's optimizer has 1; nothing "
                                         r"was loaded.*with_opt=False"):
        learn.load("two_groups")
    _assert_unchanged(learn, before)  # the weights, which fit, were not loaded either
    learn.load("two_groups", with_opt=False)  # the weights alone do fit
    assert torch.equal(learn.model[0].weight, saved.model[0].weight)


def test_a_fresh_learner_keeps_no_optimizer_when_the_checkpoint_does_not_fit(tmp_path):
    def two_groups(model):
        return [list(model[0].parameters()), list(model[2].parameters())]

    saved = make_learner(tmp_path, splitter=two_groups)
    quiet_fit(saved)
    saved.save("two_groups")
    learn = make_learner(tmp_path)
    before = _state_of(learn)
    with pytest.raises(ValueError, match="parameter groups"):
        learn.load("two_groups")
    _assert_unchanged(learn, before)


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _temp_with_pid(target, pid: int, host: str | None = None):
    name = temp_name(target).name  # .<target>.<host>.<pid>.<random>.tmp
    _, _, our_host, _, token, _ = name.rsplit(".", 5)
    temp = target.parent / f".{target.name}.{host or our_host}.{pid}.{token}.tmp"
    temp.write_bytes(b"half a checkpoint")
    return temp


@pytest.mark.skipif(os.name != "posix", reason="the liveness of a writer is checked on POSIX")
def test_the_next_save_removes_killed_writers_temp_files_only(tmp_path):
    learn = make_learner(tmp_path)
    target = learn.save("model")
    killed = _temp_with_pid(target, _dead_pid())
    live_writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = _temp_with_pid(target, live_writer.pid)
        other_host = _temp_with_pid(target, _dead_pid(), host="elsewhere")
        other_target = _temp_with_pid(target.with_name("other.pth"), _dead_pid())
        unknown_recent = target.parent / f".{target.name}.k3j4h5.tmp"  # no writer named in it
        unknown_old = target.parent / f".{target.name}.x9y8z7.tmp"
        for temp in (unknown_recent, unknown_old):
            temp.write_bytes(b"?")
        old = time.time() - STALE_AFTER_S - 60
        os.utime(unknown_old, (old, old))
        learn.save("model")
        assert not killed.exists() and not unknown_old.exists()
        for kept in (live, other_host, other_target, unknown_recent):
            assert kept.exists(), f"{kept.name} belongs to a live or unknown writer and must stay"
    finally:
        live_writer.kill()
        live_writer.wait()
    learn.save("model")  # its writer is gone now
    assert not live.exists()
    learn.load("model")


def test_an_export_removes_killed_writers_temp_files(tmp_path, tabular_export):
    learn, exported, _ = tabular_export
    killed = _temp_with_pid(exported, _dead_pid())
    learn.export("model.pkl")
    assert not killed.exists()
    assert sorted(p.name for p in exported.parent.glob(".*.tmp")) == []


def test_a_save_to_a_folder_a_file_or_an_unwritable_place_names_the_path_and_keeps_the_last_checkpoint(
        tmp_path, tabular_export, monkeypatch):
    import fastlearn.atomic
    learn = make_learner(tmp_path)
    quiet_fit(learn)
    kept = learn.save("kept")
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    with pytest.raises(NotADirectoryError, match=r"cannot write .*notes\.txt.model\.pth: .*notes\.txt is a file, not a "
                                                 r"folder"):  # was: "[Errno 17] File exists: '.../notes.txt'"
        learn.save(tmp_path / "notes.txt" / "model")
    (tmp_path / "models" / "run.pth").mkdir()
    with pytest.raises(IsADirectoryError, match=r"cannot write .*run\.pth: it is a folder; pass a file name"):
        learn.save("run")  # was: an error naming a temporary file
    exporter, _, _ = tabular_export
    with pytest.raises(NotADirectoryError, match=r"notes\.txt is a file"):
        exporter.export(tmp_path / "notes.txt" / "model.pkl")
    real_open = os.open

    def refused(path, *args, **kwargs):  # what a read-only folder gives (root is never refused)
        if str(path).endswith(".tmp"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(fastlearn.atomic.os, "open", refused)
    with pytest.raises(PermissionError, match=r"cannot write .*kept\.pth: Permission denied \(in .*models\); nothing "
                                              r"was written: save to a folder you can write"):
        learn.save("kept")
    monkeypatch.undo()
    assert torch.load(kept, weights_only=True)["model"].keys() == learn.model.state_dict().keys()
    assert sorted(p.name for p in kept.parent.glob(".*.tmp")) == []


def test_a_checkpoint_given_to_load_learner_or_an_export_to_learn_load_says_which_it_is(tabular_export):
    from fastlearn.loading import load_learner
    learn, exported, _ = tabular_export
    saved = learn.save("run")
    with pytest.raises(ValueError, match=r"run\.pth is a checkpoint \(written by learn\.save\(\)\), not an export.*learn\.load"):
        load_learner(saved)  # was: "loads but is not a fastlearn export"
    before = {k: v.clone() for k, v in learn.model.state_dict().items()}
    with pytest.raises(ValueError, match=r"model\.pkl is an export .*nothing was loaded\. Load it with load_learner"):
        learn.load(exported)  # was: "holds no model weights (a dict of tensors)"
    assert all(torch.equal(before[k], v) for k, v in learn.model.state_dict().items())


def test_a_path_starting_with_a_tilde_is_in_the_home_folder(tabular_export, tmp_path, monkeypatch):
    from fastlearn.loading import load_learner
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    learn, _, _ = tabular_export
    # was: a folder named "~" made under learn.path (and load_learner("~/...") found nothing)
    assert learn.export("~/model.pkl") == home / "model.pkl"
    assert learn.save("~/run") == home / "run.pth"
    assert not (tmp_path / "~").exists() and not (tmp_path / "models" / "~").exists()
    assert load_learner("~/model.pkl").predict(pd.Series({"color": "red", "size": 1.0}))[0] == learn.predict(
        pd.Series({"color": "red", "size": 1.0}))[0]
    assert learn.load("~/run") is learn
    monkeypatch.chdir(tmp_path)  # a folder named "~" would be made here
    learn.path = "~/project"  # a learner's own folder given with a tilde
    assert learn.export("model.pkl") == home / "project" / "model.pkl"
    assert learn.save("run") == home / "project" / "models" / "run.pth"
    assert not (tmp_path / "~").exists() and learn.load("run") is learn


def test_strict_false_that_would_load_nothing_is_an_error_and_a_partial_load_says_what_it_left(tmp_path):
    """learn.load(name, strict=False) of another architecture's checkpoint loaded no tensor and
    said nothing (the run went on from random weights)."""
    saved = make_learner(tmp_path)
    quiet_fit(saved)
    saved.save("run")
    renamed = make_learner(tmp_path)
    renamed.model = nn.Sequential(nn.Sequential(nn.Linear(4, 8), nn.ReLU()), nn.Linear(8, 1))  # other tensor names
    before = _state_of(renamed)
    with pytest.raises(ValueError, match=r"has no tensor whose name is in this learner's model .*strict=False would load "
                                         r"nothing; nothing was loaded"):
        renamed.load("run", strict=False, with_opt=False)
    _assert_unchanged(renamed, before)
    deeper = make_learner(tmp_path)
    deeper.model.append(nn.Linear(1, 1))  # a new last layer: loading the rest is what strict=False is for
    with pytest.warns(UserWarning, match=r"2 of the model's 6 tensors are not in .*run\.pth and keep their values "
                                         r"\(\['3\.bias', '3\.weight'\]\)"):
        deeper.load("run", strict=False, with_opt=False)
    assert torch.equal(deeper.model[0].weight, saved.model[0].weight)
