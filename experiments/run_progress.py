"""Where a training attempt is: ``progress.json`` and ``attempts.jsonl``.

Every attempt appends a ``start`` record (with the iteration it resumed
from) to ``attempts.jsonl`` and an ``end`` record when it ends normally.
While it trains, :class:`RunProgressHook` rewrites ``progress.json``
(iteration, elapsed seconds, peak memory) every few seconds. An attempt that
was killed has a start and no end; the next attempt closes it with the
elapsed time of its last progress record, so wall time and GPU-hours count
killed attempts too.
"""
import os.path as osp
import resource
import time
import uuid
from typing import Optional

from mmengine.hooks import Hook

from experiments.run_store import (append_attempt, atomic_write_json,
                                   read_attempts, read_json)

PROGRESS = 'progress.json'


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
        self.attempt_id = uuid.uuid4().hex[:12]
        self.t0 = time.time()

    def close_killed_attempts(self) -> None:
        """Give each earlier attempt without an end record a ``killed`` end."""
        records = read_attempts(self.run_dir)
        ended = {r.get('attempt') for r in records if r.get('event') == 'end'}
        progress = read_json(osp.join(self.run_dir, PROGRESS)) or {}
        for r in records:
            if r.get('event') == 'start' and r['attempt'] not in ended:
                same = progress.get('attempt') == r['attempt']
                append_attempt(self.run_dir, dict(
                    event='end', attempt=r['attempt'], status='killed',
                    elapsed_s=progress.get('elapsed_s', 0.0) if same else 0.0,
                    iter=progress.get('iter') if same else None,
                    **({k: progress.get(k) for k in
                        ('peak_rss_mb', 'peak_gpu_mem_mb')} if same else {})))

    def start(self, start_iter: int) -> None:
        append_attempt(self.run_dir, dict(
            event='start', attempt=self.attempt_id, iter=start_iter,
            time=time.strftime('%Y-%m-%dT%H:%M:%S')))

    def progress(self, iteration: int, max_iters: Optional[int]) -> None:
        atomic_write_json(osp.join(self.run_dir, PROGRESS), dict(
            attempt=self.attempt_id, iter=iteration, max_iters=max_iters,
            elapsed_s=round(time.time() - self.t0, 2), time=time.time(),
            **peak_memory_mb()))

    def end_record(self, status: str, iteration: Optional[int]) -> dict:
        return dict(event='end', attempt=self.attempt_id, status=status,
                    iter=iteration, elapsed_s=round(time.time() - self.t0, 2),
                    **peak_memory_mb())

    def end(self, status: str, iteration: Optional[int]) -> None:
        append_attempt(self.run_dir, self.end_record(status, iteration))


class RunProgressHook(Hook):
    """Records the attempt's start iteration and its progress while training.

    Args:
        recorder: The attempt's recorder.
        interval_s: Rewrite ``progress.json`` at most this often.
    """

    priority = 'VERY_LOW'

    def __init__(self, recorder: AttemptRecorder,
                 interval_s: float = 10.0) -> None:
        self.recorder = recorder
        self.interval_s = interval_s
        self._last = 0.0

    def before_train(self, runner) -> None:
        # After the runner loaded a checkpoint: runner.iter is where it resumed.
        self.recorder.start(runner.iter)
        self.recorder.progress(runner.iter, runner.max_iters)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        if time.time() - self._last >= self.interval_s:
            self._last = time.time()
            self.recorder.progress(runner.iter + 1, runner.max_iters)
