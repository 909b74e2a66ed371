"""DDP on CPU with Gloo, in real separate processes launched by torchrun (and notebook_launcher).

The training script (``ddp_scripts/train_ddp.py``) has no distributed code: the Learner joins the
process group by itself. Each test compares with a single-process run of the same global batches.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from fastlearn.distributed import OrderedShardSampler, distrib_ctx, launched_distributed
from fastlearn.launch import _parser, free_port, notebook_launcher, torchrun_args

SCRIPTS = Path(__file__).parent / "ddp_scripts"
TRAIN_SCRIPT = SCRIPTS / "train_ddp.py"


def _load_common():
    spec = importlib.util.spec_from_file_location("fastlearn_ddp_common", SCRIPTS / "common.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


common = _load_common()


def _env() -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env.update(OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE", PYTHONUNBUFFERED="1", CUDA_VISIBLE_DEVICES="")
    return env


def torchrun(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", *args], env=_env(),
                          capture_output=True, text=True, timeout=timeout)


def _read(out: Path, rank: int) -> dict:
    return json.loads((out / f"rank{rank}.json").read_text())


def _assert_weights_close(a: list, b: list, atol: float = 1e-5) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        torch.testing.assert_close(torch.tensor(x), torch.tensor(y), atol=atol, rtol=1e-5)


@pytest.fixture(scope="module")
def single_process(tmp_path_factory):
    """The reference: one process, batch size 16 (= 2 processes x 8), same seed and data."""
    torch.manual_seed(0)
    learn = common.make_learner(bs=16, path=tmp_path_factory.mktemp("single"))
    with learn.no_bar():
        learn.fit(2)
    return learn


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    result = torchrun(["--standalone", "--nproc_per_node=2", "--redirects=3", f"--log-dir={out / 'logs'}",
                       str(TRAIN_SCRIPT), str(out), "--bs", "8"])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


def test_two_processes_end_with_identical_weights(ddp_run):
    rank0, rank1 = _read(ddp_run, 0), _read(ddp_run, 1)
    assert (rank0["world"], rank1["world"]) == (2, 2)
    assert rank0["weights"] == rank1["weights"]
    assert rank0["model_type"] == "Sequential"  # unwrapped after fit


def test_ddp_weights_match_single_process_over_same_global_batches(ddp_run, single_process):
    _assert_weights_close(_read(ddp_run, 0)["weights"], common.weights(single_process))


def test_validation_metrics_equal_single_process_with_uneven_last_batch(ddp_run, single_process, tmp_path):
    # 37 validation items, 2 processes x 16: the last global batch holds 5 real items and 27 pads
    rank0, rank1 = _read(ddp_run, 0), _read(ddp_run, 1)
    reference = common.make_learner(bs=16, path=tmp_path)
    reference.load(ddp_run / "rank0" / "models" / "final.pth")
    expected = reference.validate()
    assert expected[-1] == common.N_VALID
    for got in (rank0["validate"], rank1["validate"]):
        assert got[-1] == common.N_VALID  # every item counted once, no padding
        torch.testing.assert_close(torch.tensor(got[:-1]), torch.tensor(expected[:-1]), atol=1e-6, rtol=1e-6)
    # the per-epoch table agrees with the single-process run on the same data
    table = torch.tensor(rank0["values"])[:, 1:]
    torch.testing.assert_close(table, torch.tensor(single_process.recorder.values)[:, 1:], atol=1e-4, rtol=1e-4)
    # get_preds gathers the whole validation set, in dataset order, on every process
    preds, targs = reference.get_preds()
    inputs = reference.get_preds(with_input=True)[0]
    for got in (rank0, rank1):
        torch.testing.assert_close(torch.tensor(got["preds"]), preds, atol=1e-6, rtol=1e-6)
        assert got["targs"] == targs.tolist()
        torch.testing.assert_close(torch.tensor(got["inputs"]), inputs)  # inputs gathered too


def test_a_torchmetrics_metric_counts_each_validation_item_once(ddp_run):
    pytest.importorskip("torchmetrics")
    for rank in (0, 1):
        valid_loss, accuracy, mean_prob, own_count, torchmetrics_count = _read(ddp_run, rank)["validate"]
        assert own_count == torchmetrics_count == common.N_VALID


def test_only_rank_zero_writes_files_and_every_rank_loads(ddp_run):
    written = sorted(p.name for p in (ddp_run / "rank0" / "models").iterdir())
    assert written == ["final.pth", "model_0.pth", "model_1.pth"]
    assert not (ddp_run / "rank1").exists()
    assert _read(ddp_run, 0)["is_main"] and not _read(ddp_run, 1)["is_main"]
    assert _read(ddp_run, 0)["loaded_equal"] and _read(ddp_run, 1)["loaded_equal"]
    logs = {p.parent.name: p.read_text() for p in (ddp_run / "logs").rglob("stdout.log")}
    assert "valid_loss" in logs["0"] and "valid_loss" not in logs["1"]


def test_two_nodes_rendezvous_and_agree(tmp_path, single_process):
    port = free_port()
    common_args = ["--nnodes=2", "--nproc_per_node=1", "--rdzv_backend=c10d",
                   f"--rdzv_endpoint=127.0.0.1:{port}", "--rdzv_id=fastlearn-test", "--max_restarts=0"]
    nodes = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", *common_args, f"--node_rank={rank}",
                               str(TRAIN_SCRIPT), str(tmp_path), "--bs", "8"],
                              env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for rank in (0, 1)]
    outputs = [node.communicate(timeout=150)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], "\n".join(o[-2000:] for o in outputs)
    rank0, rank1 = _read(tmp_path, 0), _read(tmp_path, 1)
    assert rank0["world"] == rank1["world"] == 2
    assert rank0["weights"] == rank1["weights"]
    _assert_weights_close(rank0["weights"], common.weights(single_process))


def test_a_crashing_process_stops_the_others_with_an_error(tmp_path):
    start = time.monotonic()
    result = torchrun(["--standalone", "--nproc_per_node=2", str(TRAIN_SCRIPT), str(tmp_path),
                       "--crash-rank", "1"], timeout=90)
    assert result.returncode != 0
    assert "planned failure on rank 1" in result.stdout + result.stderr
    assert time.monotonic() - start < 90
    assert not (tmp_path / "rank0.json").exists()


def test_notebook_launcher_with_gradient_accumulation_matches_one_big_batch(tmp_path):
    # 2 processes x bs 4, stepping every 16 samples per process = one step per 32 samples
    notebook_launcher(common.train_with_accumulation, args=(str(tmp_path),), num_processes=2)
    rank0 = json.loads((tmp_path / "acc_rank0.json").read_text())
    rank1 = json.loads((tmp_path / "acc_rank1.json").read_text())
    assert rank0["world"] == 2 and rank0["weights"] == rank1["weights"]
    reference = common.make_learner(bs=32, path=tmp_path / "single")
    with reference.no_bar():
        reference.fit(2)
    _assert_weights_close(rank0["weights"], common.weights(reference))
    assert not launched_distributed()  # the parent's environment is untouched


def test_ordered_shard_sampler_covers_each_item_once_in_order():
    n, world, bs = 37, 3, 4
    samplers = [OrderedShardSampler(n, world, rank, bs) for rank in range(world)]
    assert len({len(s) for s in samplers}) == 1
    shards = [list(s) for s in samplers]
    gathered = []
    for b in range(samplers[0].n_batches):
        batch = [i for shard in shards for i in shard[b * bs:(b + 1) * bs]]
        gathered += [i for i, keep in zip(batch, samplers[0].keep(b).tolist()) if keep]
    assert gathered == list(range(n))


def test_distrib_ctx_outside_a_launcher_changes_nothing(tmp_path):
    learn = common.make_learner(bs=16, path=tmp_path)
    with distrib_ctx(learn):
        assert [type(cb).__name__ for cb in learn.cbs if "Distributed" in type(cb).__name__] == []
        with learn.no_bar():
            learn.fit(1)
    assert type(learn.model).__name__ == "Sequential"


def test_launch_builds_torchrun_commands():
    parse = _parser().parse_args
    assert torchrun_args(parse(["-n", "2", "train.py", "--lr", "0.1"])) == [
        "--nproc_per_node=2", "--nnodes=1", "--max_restarts=0", "--standalone", "train.py", "--lr", "0.1"]
    multi = torchrun_args(parse(["-n", "4", "--nnodes", "2", "--rdzv_endpoint", "10.1.1.1:29500",
                                 "--rdzv_id", "job7", "train.py"]))
    assert "--rdzv_endpoint=10.1.1.1:29500" in multi and "--rdzv_backend=c10d" in multi
    assert "--rdzv_id=job7" in multi and "--standalone" not in multi
    with pytest.raises(ValueError, match="rdzv_endpoint"):
        torchrun_args(parse(["--nnodes", "2", "train.py"]))


def test_launch_module_runs_a_script_on_two_processes(tmp_path):
    script = tmp_path / "show_rank.py"
    script.write_text("import os\nopen(os.path.join(os.path.dirname(__file__), 'r' + os.environ['RANK']), 'w')"
                      ".write(os.environ['WORLD_SIZE'])\n")
    result = subprocess.run([sys.executable, "-m", "fastlearn.launch", "-n", "2", str(script)], env=_env(),
                            capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "r0").read_text() == (tmp_path / "r1").read_text() == "2"
