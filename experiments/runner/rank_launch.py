"""Run one grid run on k processes (``torchrun``), ending as its cause did.

    python -m experiments.runner.rank_launch --nproc 2 RUN_DIR

Starts ``experiments/runner/train_run.py RUN_DIR --launcher pytorch`` on ``k``
local processes through PyTorch's own ``torchrun`` (``torch.distributed.run``,
in this process). One rank ending badly ends the others within
``torchrun``'s stop timeout (SIGTERM, then SIGKILL): no rank waits forever in
a collective whose peer is gone.

This process then ends the way the *cause* did, so that the runner's rules
for one process hold for k (``experiments/runner/launch.py``):

- a rank killed by a signal from outside (the OOM killer, a ``kill``) makes
  this process die of the same signal: the runner counts it against
  ``--signal-retries`` and resumes the run from its last checkpoint. The
  other ranks' errors that follow (a collective whose peer died) are
  consequences, not the cause;
- a rank that raised (bad data, a NaN loss) makes this process exit 1, and
  its error -- the earliest by the time the rank recorded it
  (``error.rank<r>.json``) -- becomes the run's ``error.json``, naming the
  rank;
- SIGTERM/SIGINT to this process (Slurm, Ctrl-C) stops every rank and this
  process dies of that signal.

Which rank ended how is printed, and kept per attempt in ``ranks.jsonl`` in
the run dir. ``torchrun``'s own logs go to a temporary folder of the attempt,
removed when it ends however it ended (left to ``torchrun``, every attempt
left a ``torchelastic_*`` folder in the temp dir).
"""
import argparse
import glob
import json
import os
import os.path as osp
import shutil
import signal
import socket
import sys
import tempfile
import time
from typing import Dict, Optional

# One line per attempt that ended badly: which rank ended how.
RANKS_LOG = 'ranks.jsonl'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def rank_errors(run_dir: str) -> Dict[int, dict]:
    """The ``error.rank<r>.json`` records of ``run_dir``, by rank."""
    errors = {}
    for path in glob.glob(osp.join(run_dir, 'error.rank*.json')):
        try:
            with open(path) as f:
                record = json.load(f)
            errors[int(record['rank'])] = record
        except (OSError, ValueError, KeyError):
            continue
    return errors


def clear_rank_errors(run_dir: str) -> None:
    for path in glob.glob(osp.join(run_dir, 'error.rank*.json')):
        os.remove(path)


def _die_of(signum: int) -> None:
    if signum not in (signal.SIGKILL, signal.SIGSTOP):
        signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    time.sleep(5)  # the signal arrives first
    raise SystemExit(128 + signum)


def _cause(failures: dict, errors: Dict[int, dict]) -> tuple:
    """(rank, signal number or None) of the failure that started it."""
    killed = {r: -f.exitcode for r, f in failures.items() if f.exitcode < 0}
    # torchrun stops the other ranks with SIGTERM once one has failed, so a
    # SIGTERM death is a consequence unless nothing else went wrong.
    outside = {r: s for r, s in killed.items() if s != signal.SIGTERM}
    if outside:
        rank = min(outside)
        return rank, outside[rank]
    raised = [r for r, f in failures.items() if r in errors and f.exitcode > 0]
    if raised:
        return min(raised, key=lambda r: (errors[r].get('time', 0), r)), None
    if killed:
        rank = min(killed)
        return rank, killed[rank]
    return min(failures), None


def main(argv: Optional[list] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('run_dir')
    parser.add_argument('--nproc', type=int, required=True)
    args = parser.parse_args(argv)

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import (
        ChildFailedError,
    )
    from torch.distributed.run import parse_args, run

    from experiments.runner.progress import ATTEMPT_ID_ENV
    from experiments.store import atomic_write_json

    clear_rank_errors(args.run_dir)
    # torchrun's logs and error files: this attempt's own folder, removed
    # below (torchrun's default is a new folder in the temp dir, kept).
    log_dir = tempfile.mkdtemp(prefix='torchelastic_rank_launch_')
    # --monitor-interval: how soon a dead rank is noticed (seconds).
    torchrun_args = parse_args([
        f'--nproc_per_node={args.nproc}', '--nnodes=1',
        f'--master_port={_free_port()}', '--monitor-interval=0.5',
        f'--log-dir={log_dir}',
        '--module', 'experiments.runner.train_run', args.run_dir,
        '--launcher', 'pytorch'])
    try:
        try:
            run(torchrun_args)
        finally:
            # Before any _die_of below: a process killing itself runs no
            # finally.
            shutil.rmtree(log_dir, ignore_errors=True)
    except SignalException as e:
        print(f'rank_launch: {e.sigval.name}: every rank was stopped',
              file=sys.stderr, flush=True)
        _die_of(int(e.sigval))
    except ChildFailedError as e:
        errors = rank_errors(args.run_dir)
        rank, signum = _cause(e.failures, errors)
        ends = {str(r): (f'killed by {signal.Signals(-f.exitcode).name}'
                         if f.exitcode < 0 else f'exited {f.exitcode}')
                for r, f in sorted(e.failures.items())}
        with open(osp.join(args.run_dir, RANKS_LOG), 'a') as f:
            f.write(json.dumps(dict(
                attempt=os.environ.get(ATTEMPT_ID_ENV),
                cause_rank=rank, ends=ends, time=time.time())) + '\n')
        print(f'rank_launch: rank {rank} ended first '
              f'({ends[str(rank)]}); ranks: {ends}', file=sys.stderr,
              flush=True)
        if signum is not None:
            _die_of(signum)
        if rank in errors:
            error = dict(errors[rank], processes=args.nproc)
            atomic_write_json(osp.join(args.run_dir, 'error.json'), error)
        raise SystemExit(1)


if __name__ == '__main__':
    main()
