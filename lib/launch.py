"""Launch a training script on several processes: ``python -m fastlearn.launch -n N script.py args``.

A thin wrapper over ``torchrun`` (``torch.distributed.run``): the script is unchanged, every
process runs it, and the ``Learner`` trains with DistributedDataParallel. Several machines join
through torchrun's rendezvous::

    python -m fastlearn.launch -n 2 train.py --epochs 3                     # one machine, 2 processes
    python -m fastlearn.launch -n 4 --nnodes 2 --node_rank 0 \\
        --rdzv_endpoint 10.0.0.1:29500 train.py                             # machine 0 of 2

From a notebook, ``notebook_launcher(train_function, args, num_processes=2)`` forks the processes.
If one process fails, the others are stopped and the launcher exits with an error.
"""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Sequence

import torch

from fastlearn.distributed import teardown_distrib


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now.

    >>> 0 < free_port() < 65536
    True
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fastlearn.launch",
        description="Run SCRIPT on several processes with DistributedDataParallel (a wrapper over torchrun).")
    parser.add_argument("-n", "--nproc_per_node", "--num_processes", dest="nproc_per_node", default=None,
                        help="processes on this machine (default: the number of GPUs, or 1 without GPUs)")
    parser.add_argument("--nnodes", default="1", help="number of machines (or MIN:MAX for elastic runs)")
    parser.add_argument("--node_rank", type=int, default=None, help="this machine's rank (static rendezvous)")
    parser.add_argument("--rdzv_endpoint", default=None, help="HOST:PORT of the rendezvous, reachable from every machine")
    parser.add_argument("--rdzv_backend", default=None, help="rendezvous backend (default c10d with an endpoint)")
    parser.add_argument("--rdzv_id", default=None, help="a job id shared by every machine of the run")
    parser.add_argument("--master_addr", default=None, help="address of machine 0 (static rendezvous)")
    parser.add_argument("--master_port", type=int, default=None, help="port on machine 0 (static rendezvous)")
    parser.add_argument("--max_restarts", type=int, default=0, help="restarts of the whole group after a failure")
    parser.add_argument("script", help="the training script")
    parser.add_argument("script_args", nargs=argparse.REMAINDER, help="arguments passed to the script")
    return parser


def torchrun_args(args: argparse.Namespace) -> list[str]:
    """The ``torch.distributed.run`` command-line arguments for parsed launcher arguments.

    >>> torchrun_args(_parser().parse_args(["-n", "2", "train.py", "--lr", "0.1"]))
    ['--nproc_per_node=2', '--nnodes=1', '--max_restarts=0', '--standalone', 'train.py', '--lr', '0.1']
    """
    nproc = args.nproc_per_node
    if nproc is None:
        nproc = str(torch.cuda.device_count()) if torch.cuda.is_available() else "1"
    result = [f"--nproc_per_node={nproc}", f"--nnodes={args.nnodes}", f"--max_restarts={args.max_restarts}"]
    multi_node = str(args.nnodes) != "1"
    if args.rdzv_endpoint:
        result += [f"--rdzv_endpoint={args.rdzv_endpoint}", f"--rdzv_backend={args.rdzv_backend or 'c10d'}"]
        if args.rdzv_id:
            result.append(f"--rdzv_id={args.rdzv_id}")
    elif args.master_addr or args.master_port:
        result += [f"--master_addr={args.master_addr or '127.0.0.1'}",
                   f"--master_port={args.master_port or 29500}"]
    elif multi_node:
        raise ValueError(f"--nnodes={args.nnodes} needs a meeting point: pass --rdzv_endpoint HOST:PORT "
                         "(with --rdzv_id) or --master_addr/--master_port with --node_rank")
    else:
        result.append("--standalone")
    if args.node_rank is not None:
        result.append(f"--node_rank={args.node_rank}")
    return result + [args.script, *args.script_args]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m fastlearn.launch``; returns torchrun's exit code.

    >>> main(["-n", "2", "train.py"])   # doctest: +SKIP
    0
    """
    args = _parser().parse_args(argv)
    command = [sys.executable, "-m", "torch.distributed.run", *torchrun_args(args)]
    return subprocess.call(command)


# --- notebooks ----------------------------------------------------------------------------------

def _notebook_worker(index: int, function: Callable, args: tuple, num_processes: int, port: int) -> None:
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(index),
                       "LOCAL_RANK": str(index), "WORLD_SIZE": str(num_processes),
                       "LOCAL_WORLD_SIZE": str(num_processes)})
    try:
        function(*args)
    finally:
        teardown_distrib()


def notebook_launcher(function: Callable, args: tuple = (), num_processes: int = 2,
                      master_port: int | None = None, start_method: str = "fork") -> None:
    """Run ``function(*args)`` on ``num_processes`` processes that train together with DDP, from a
    notebook or a script: a ``Learner`` built inside ``function`` finds the process group on its
    own. Results should be saved to files (``learn.save``), return values are dropped. If one
    process raises, the others are stopped and the error is raised here.

    ``start_method="fork"`` (default) runs functions defined in a notebook; CUDA must not be
    initialised in this process before (build the model inside ``function``). ``"spawn"`` needs
    an importable function.

    >>> def train():
    ...     learn = Learner(make_dls(), make_model(), loss_func=CrossEntropyLossFlat())
    ...     learn.fit_one_cycle(1, 1e-3)
    >>> notebook_launcher(train, num_processes=2)   # doctest: +SKIP
    """
    if not isinstance(num_processes, int) or num_processes < 1:
        raise ValueError(f"num_processes={num_processes!r}; expected a positive int")
    if num_processes == 1:
        function(*args)
        return
    if start_method == "fork" and torch.cuda.is_available() and torch.cuda.is_initialized():
        raise RuntimeError("CUDA is already initialised in this process, so forked processes cannot use it; "
                           "restart the kernel and build the model and data inside the launched function, "
                           "or pass start_method='spawn' with a function importable from a module")
    import torch.multiprocessing as mp
    port = master_port if master_port is not None else free_port()
    mp.start_processes(_notebook_worker, args=(function, tuple(args), num_processes, port),
                       nprocs=num_processes, join=True, start_method=start_method)


if __name__ == "__main__":
    sys.exit(main())
