"""Where a training attempt is: ``progress.json`` and ``attempts.jsonl``.

Every attempt appends to ``attempts.jsonl``: a ``launch`` record, written by
the runner before the child starts; a ``start`` record (with the iteration
it resumed from), written by the child once training begins; an ``end``
record. The child writes the end when it finishes or fails; when it is
killed, the runner writes it with the exact elapsed time and the signal.
While it trains,
:class:`~experiments.runner.progress_hook.RunProgressHook` rewrites
``progress.json`` (iteration, the iteration the attempt started from,
elapsed seconds, peak memory) every few seconds and at every checkpoint.

When the runner was killed too, nobody wrote the end: the next attempt
closes it from what is on disk, marked ``exact: false`` -- elapsed up to the
last write to the run dir, iteration at least that of the newest checkpoint
or progress record. Wall time and GPU-hours count every attempt.
"""
import os
import os.path as osp
import re
import resource
import time
import uuid
from typing import Optional

from experiments.store import (
    CHECKPOINT_NAME,
    append_attempt,
    atomic_write_json,
    read_attempts,
    read_json,
    saved_checkpoints,
)

PROGRESS = 'progress.json'
ATTEMPT_ID_ENV = 'GRID_ATTEMPT_ID'


def new_attempt_id() -> str:
    return uuid.uuid4().hex[:12]


def checkpoint_iteration(run_dir: str) -> Optional[int]:
    """The iteration of the newest ``iter_<n>.pth`` in ``run_dir``."""
    return max((n for kind, n, _ in saved_checkpoints(run_dir)
                if kind == 'iter'), default=None)


def _known_iteration(run_dir: str, attempt_id: str) -> Optional[int]:
    progress = read_json(osp.join(run_dir, PROGRESS)) or {}
    seen = [progress.get('iter') if progress.get('attempt') == attempt_id
            else None, checkpoint_iteration(run_dir)]
    seen = [i for i in seen if i is not None]
    return max(seen) if seen else None


def _last_write(run_dir: str) -> float:
    """When a training child last wrote to ``run_dir`` (newest mtime).

    Only what a child writes counts: its progress record, checkpoints and
    mmengine's ``<timestamp>/`` log dir -- not ``run.log`` or
    ``attempts.jsonl``, which the runner starting the next attempt has just
    written to.
    """
    times = []
    for name in os.listdir(run_dir):
        path = osp.join(run_dir, name)
        if name in (PROGRESS, 'last_checkpoint') or \
                CHECKPOINT_NAME.fullmatch(name):
            times.append(osp.getmtime(path))
        elif re.fullmatch(r'\d{8}_\d{6}', name) and osp.isdir(path):
            for root, _, files in os.walk(path):
                times.extend(osp.getmtime(osp.join(root, f)) for f in files)
    return max(times, default=0.0)


def close_attempt(run_dir: str, attempt_id: str, elapsed_s: float,
                  how: str, **extra) -> bool:
    """Append an end record for ``attempt_id`` unless it has one.

    Called by the runner when its child exited: a child that was killed
    left none. The iteration is the newest one on disk (a lower bound: the
    child may have trained past it).

    Returns:
        Whether a record was appended.
    """
    records = read_attempts(run_dir)
    if any(r.get('event') == 'end' and r.get('attempt') == attempt_id
           for r in records):
        return False
    progress = read_json(osp.join(run_dir, PROGRESS)) or {}
    same = progress.get('attempt') == attempt_id
    append_attempt(run_dir, dict(
        event='end', attempt=attempt_id, status=how,
        elapsed_s=round(elapsed_s, 2),
        iter=_known_iteration(run_dir, attempt_id), iter_exact=False,
        **{k: progress.get(k) if same else None
           for k in ('peak_rss_mb', 'peak_gpu_mem_mb')}, **extra))
    return True


def signal_kills_in_a_row(run_dir: str) -> int:
    """How many of the last attempts in a row ended in a signal kill that
    counts against ``--signal-retries``.

    Counted: end records with ``signal`` and ``counts: true`` (the runner
    wrote them: its child was killed while it lived). Any other end -- a
    finish, an exception, a Slurm job stopped and requeued, a launch marked
    ``fresh`` (``--retry-failed`` on a failed run) -- starts the count
    again.
    """
    count = 0
    for r in read_attempts(run_dir):
        if r.get('event') == 'launch' and r.get('fresh'):
            count = 0
        elif r.get('event') == 'end':
            count = count + 1 if r.get('signal') and r.get('counts') else 0
    return count


def attempt_signals(records) -> str:
    """``SIGKILL; SIGTERM (Slurm stopped the job)``: the signals that ended
    attempts, in order, for the results row."""
    return '; '.join(
        (r.get('signal') or r.get('status', '?'))
        + (f' ({r["cause"]})' if r.get('cause') else '')
        for r in records if r.get('event') == 'end'
        and (r.get('signal') or r.get('cause')))


def peak_memory_mb() -> dict:
    """Peak resident memory of this process and peak CUDA memory, in MiB."""
    peak = dict(peak_rss_mb=round(resource.getrusage(
        resource.RUSAGE_SELF).ru_maxrss / 1024, 1), peak_gpu_mem_mb=None)
    try:
        import torch
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            peak['peak_gpu_mem_mb'] = round(
                torch.cuda.max_memory_allocated() / 2**20, 1)
    except ImportError:
        pass
    return peak


class AttemptRecorder:
    """The bookkeeping of one attempt in one run directory."""

    def __init__(self, run_dir: str) -> None:
        self.run_dir = run_dir
        # The runner's id for this attempt (its launch record), or a new one
        # when train_run.py was started by hand.
        self.attempt_id = os.environ.get(ATTEMPT_ID_ENV) or new_attempt_id()
        self.t0 = time.time()
        # Where this attempt started (resumed) from: its own rate counts
        # only the iterations past it.
        self.start_iter: Optional[int] = None

    def close_killed_attempts(self) -> None:
        """Give each earlier attempt without an end record a ``killed`` end.

        Those are attempts whose runner was killed with them (else the
        runner wrote the end). Elapsed time runs from the launch (or start)
        record to the last write in the run dir before this attempt, which
        is when that attempt was last seen alive.
        """
        records = read_attempts(self.run_dir)
        ended = {r.get('attempt') for r in records if r.get('event') == 'end'}
        begun = {}
        for r in records:
            if r.get('event') in ('launch', 'start') and \
                    r.get('attempt') not in ended and \
                    r.get('attempt') != self.attempt_id:
                begun.setdefault(r['attempt'], r)
        if not begun:
            return
        last_seen = _last_write(self.run_dir)
        progress = read_json(osp.join(self.run_dir, PROGRESS)) or {}
        for attempt, first in begun.items():
            same = progress.get('attempt') == attempt
            started = first.get('time_s') or time.mktime(time.strptime(
                first['time'], '%Y-%m-%dT%H:%M:%S'))
            elapsed = max(last_seen - started,
                          progress.get('elapsed_s', 0.0) if same else 0.0)
            append_attempt(self.run_dir, dict(
                event='end', attempt=attempt, status='killed',
                elapsed_s=round(max(elapsed, 0.0), 2),
                iter=_known_iteration(self.run_dir, attempt),
                iter_exact=False, exact=False,
                **{k: progress.get(k) if same else None
                   for k in ('peak_rss_mb', 'peak_gpu_mem_mb')}))

    def start(self, start_iter: int) -> None:
        self.start_iter = start_iter
        append_attempt(self.run_dir, dict(
            event='start', attempt=self.attempt_id, iter=start_iter,
            time=time.strftime('%Y-%m-%dT%H:%M:%S')))

    def progress(self, iteration: int, max_iters: Optional[int]) -> None:
        atomic_write_json(osp.join(self.run_dir, PROGRESS), dict(
            attempt=self.attempt_id, iter=iteration,
            start_iter=self.start_iter, max_iters=max_iters,
            elapsed_s=round(time.time() - self.t0, 2), time=time.time(),
            **peak_memory_mb()))

    def end_record(self, status: str, iteration: Optional[int]) -> dict:
        return dict(event='end', attempt=self.attempt_id, status=status,
                    iter=iteration, elapsed_s=round(time.time() - self.t0, 2),
                    **peak_memory_mb())

    def end(self, status: str, iteration: Optional[int]) -> None:
        append_attempt(self.run_dir, self.end_record(status, iteration))
