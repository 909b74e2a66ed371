"""A run killed with SIGKILL in the middle of its third epoch, resumed from its last per-epoch
checkpoint, ends with exactly the weights of an uninterrupted run."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

SCRIPT = Path(__file__).parent / "ddp_scripts" / "resume_train.py"


def _start(mode: str, out: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE", CUDA_VISIBLE_DEVICES="", PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, str(SCRIPT), mode, str(out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_killed_run_resumed_from_its_checkpoint_ends_like_an_uninterrupted_run(tmp_path):
    killed_dir, full_dir = tmp_path / "killed", tmp_path / "full"
    killable = _start("killable", killed_dir)
    full = _start("full", full_dir)
    marker = killed_dir / "marker"
    deadline = time.monotonic() + 90
    while not marker.exists():
        assert killable.poll() is None, killable.communicate()[0][-3000:]
        assert time.monotonic() < deadline, "the run never reached the middle of its third epoch"
        time.sleep(0.1)
    os.kill(killable.pid, signal.SIGKILL)
    killable.wait(timeout=30)
    assert killable.returncode == -signal.SIGKILL
    assert sorted(p.name for p in (killed_dir / "models").glob("*.pth")) == ["model_0.pth", "model_1.pth"]
    assert not (killed_dir / "final.pt").exists()

    resumed = _start("resume", killed_dir)
    resumed_output = resumed.communicate(timeout=120)[0]
    assert resumed.returncode == 0, resumed_output[-3000:]
    assert "resuming from model_1 at epoch 2" in resumed_output
    full_output = full.communicate(timeout=120)[0]
    assert full.returncode == 0, full_output[-3000:]

    expected = torch.load(full_dir / "final.pt", weights_only=True)
    got = torch.load(killed_dir / "final.pt", weights_only=True)
    assert list(got) == list(expected)
    for key in expected:
        assert torch.equal(got[key], expected[key]), key
    # the resumed run wrote the remaining per-epoch checkpoints
    assert sorted(p.name for p in (killed_dir / "models").glob("*.pth")) == [f"model_{i}.pth" for i in range(5)]
