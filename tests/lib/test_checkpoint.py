"""learn.save / learn.load: complete state, exact resumption, atomic files, clear errors."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from fastlearn.callback import Callback, CancelFitException
from fastlearn.data.databunch import DataBunch
from fastlearn.learner import Learner
from fastlearn.losses import MSELossFlat


def make_learner(path, seed=None):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(72, 4, generator=gen)
    y = (x @ torch.tensor([1.0, -1.0, 2.0, 0.5])).unsqueeze(1)
    items = list(zip(x, y))
    dls = DataBunch.from_dsets(items[:56], items[56:], bs=8, seed=seed, device="cpu")
    torch.manual_seed(123)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 1))
    return Learner(dls, model, loss_func=MSELossFlat(), lr=1e-2, path=path, device="cpu")


def train(learn, method, *args, **kwargs):
    with learn.no_bar(), learn.no_logging():
        getattr(learn, method)(*args, **kwargs)


def assert_same_weights(a, b):
    for (name, x), y in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        torch.testing.assert_close(x, y, atol=0, rtol=0, msg=lambda m: f"{name}: {m}")


@pytest.mark.parametrize("seed", [7, 11])
def test_resume_constant_lr_fit_matches_an_uninterrupted_run(tmp_path, seed):
    straight = make_learner(tmp_path, seed)
    train(straight, "fit", 3)

    first = make_learner(tmp_path, seed)
    train(first, "fit", 2)
    first.save("two_epochs")
    resumed = make_learner(tmp_path, seed)
    assert resumed.load("two_epochs") is resumed
    train(resumed, "fit", 3, start_epoch=2)
    assert_same_weights(straight, resumed)
    valid_loss = resumed.recorder.values[-1][1]  # (the smoothed train loss restarts with each fit)
    assert valid_loss == pytest.approx(straight.recorder.values[-1][1], rel=1e-6)
    # and it differs from the weights after two epochs: the third epoch did train
    assert not torch.equal(first.model[0].weight, resumed.model[0].weight)


def test_resume_fit_one_cycle_mid_schedule(tmp_path):
    straight = make_learner(tmp_path, seed=3)
    train(straight, "fit_one_cycle", 3, 2e-2)
    lrs_straight = [row[-1] for row in straight.recorder.lrs]

    first = make_learner(tmp_path, seed=3)  # a 3-epoch schedule, stopped after its second epoch

    class Stop(Callback):
        order = 99

        def after_epoch(self):
            if self.epoch == 1:
                raise CancelFitException()

    train(first, "fit_one_cycle", 3, 2e-2, cbs=Stop())
    first.save("mid_cycle")
    resumed = make_learner(tmp_path, seed=3)
    resumed.load("mid_cycle")
    train(resumed, "fit_one_cycle", 3, 2e-2, start_epoch=2)
    assert_same_weights(straight, resumed)
    per_epoch = len(straight.dls.train)
    assert [row[-1] for row in resumed.recorder.lrs] == pytest.approx(lrs_straight[2 * per_epoch:], rel=1e-12)


def test_save_restores_optimizer_state_and_rng(tmp_path):
    learn = make_learner(tmp_path)
    train(learn, "fit", 1)
    path = learn.save("state")
    assert path == tmp_path / "models" / "state.pth" and path.is_file()
    expected_draw = torch.rand(3)
    other = make_learner(tmp_path)
    other.load("state")
    torch.testing.assert_close(torch.rand(3), expected_draw)
    saved_state = learn.opt.state_dict()["state"]
    loaded_state = other.opt.state_dict()["state"]
    assert saved_state.keys() == loaded_state.keys() and saved_state
    for key in saved_state:
        torch.testing.assert_close(saved_state[key]["exp_avg"], loaded_state[key]["exp_avg"])
    # without the optimizer: weights only
    learn.save("weights_only", with_opt=False)
    fresh = make_learner(tmp_path)
    fresh.load("weights_only")
    assert_same_weights(learn, fresh)
    assert fresh.opt is None or not fresh.opt.state_dict()["state"]


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path, monkeypatch):
    learn = make_learner(tmp_path)
    learn.save("model")
    folder = tmp_path / "models"
    assert [p.name for p in folder.iterdir()] == ["model.pth"]
    good = (folder / "model.pth").read_bytes()

    def broken_save(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise OSError("disk full")

    train(learn, "fit", 1)
    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        learn.save("model")
    monkeypatch.undo()
    assert [p.name for p in folder.iterdir()] == ["model.pth"]
    assert (folder / "model.pth").read_bytes() == good, "a failed save leaves the old checkpoint whole"


def test_truncated_or_missing_checkpoint_gives_a_clear_error(tmp_path):
    learn = make_learner(tmp_path)
    path = learn.save("model")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    before = {k: v.clone() for k, v in learn.model.state_dict().items()}
    with pytest.raises(ValueError, match=r"model\.pth.*(damaged|truncated)"):
        learn.load("model")
    assert all(torch.equal(before[k], v) for k, v in learn.model.state_dict().items())
    with pytest.raises(FileNotFoundError, match="nope"):
        learn.load("nope")


def test_load_accepts_a_path_and_plain_state_dict(tmp_path):
    learn = make_learner(tmp_path)
    train(learn, "fit", 1)
    file = tmp_path / "elsewhere" / "weights.pt"
    file.parent.mkdir()
    torch.save(learn.model.state_dict(), file)
    other = make_learner(tmp_path)
    other.load(file)
    assert_same_weights(learn, other)
