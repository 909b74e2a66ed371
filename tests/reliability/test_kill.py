"""SIGKILL at bad moments: during ``learn.save``, and in the middle of an epoch.

Every checkpoint stays loadable, the next save removes what a killed save left, and a run killed
three times and resumed each time from its last checkpoint ends bit-identical to a run that was
never interrupted.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPTS = Path(__file__).parent / "scripts"
RESUME_SCRIPT = Path(__file__).parents[1] / "lib" / "ddp_scripts" / "resume_train.py"


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE", CUDA_VISIBLE_DEVICES="", PYTHONUNBUFFERED="1")
    return env


def _temp_files(folder: Path) -> list[Path]:
    return sorted(folder.glob(".*.tmp"))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the kills are of forked children")
def test_sigkill_during_save_ten_times_leaves_loadable_files_and_the_next_save_cleans_up(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPTS / "kill_during_save.py"), str(tmp_path), "10", "0"],
                            env=_env(), capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    rounds = report["rounds"]
    assert len(rounds) == 10 and all(r["killed"] for r in rounds)
    # whatever the moment of the kill, the checkpoint under its real name is whole and loads
    assert all(r["loaded_whole"] and r["names"] == ["model.pth"] for r in rounds), rounds
    # the kills did land inside saves (their temporary files were left), and the next save removed them
    assert sum(r["left_temp"] for r in rounds) >= 5, rounds
    assert report["after_next_save"] == ["model.pth"]
    assert _temp_files(tmp_path / "models") == []
    state = torch.load(tmp_path / "models" / "model.pth", weights_only=True)
    assert {"model", "opt", "rng", "epoch"} <= set(state)


def test_killed_mid_epoch_three_times_and_resumed_ends_bit_identical(tmp_path):
    killed_dir, full_dir = tmp_path / "killed", tmp_path / "full"
    result = subprocess.run([sys.executable, str(SCRIPTS / "kill_and_resume.py"), str(killed_dir), str(full_dir)],
                            env=_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["full"] == {"exit": 0}, report["full_log"][-3000:]
    chain, logs = report["chain"], report["logs"]
    for i in range(3):  # killed in the middle of epochs 1, 2 and 3
        assert chain[i] == {"signal": signal.SIGKILL}, logs[i][-3000:]
    assert chain[3] == {"exit": 0}, logs[3][-3000:]
    for i in range(1, 4):
        assert f"resuming from model_{i - 1} at epoch {i}" in logs[i]
    expected = torch.load(full_dir / "final.pt", weights_only=True)
    got = torch.load(killed_dir / "final.pt", weights_only=True)
    assert list(got) == list(expected)
    for key in expected:
        assert torch.equal(got[key], expected[key]), key
    assert sorted(p.name for p in (killed_dir / "models").iterdir()) == [f"model_{i}.pth" for i in range(5)]
