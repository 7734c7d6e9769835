"""The live progress line of a grid: done / running / failed / queued, ETA.

On a terminal the status line is redrawn in place; in a log file (stdout not
a TTY) it is printed as a line after each event and every ``tick``, so a
Slurm log or ``nohup`` file shows the same history.
"""
import os.path as osp
import sys
import time
from typing import Dict, List, Optional, TextIO, Tuple

from experiments.runner.progress import PROGRESS
from experiments.store import read_attempts, read_json


def fmt_duration(seconds: Optional[float]) -> str:
    if seconds is None or seconds != seconds:
        return '?'
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f'{h}h{m:02d}m' if h else f'{m}m{s:02d}s'


def fmt_ap(value) -> str:
    return 'n/a' if value is None or value != value else f'{100 * value:.1f}'


class GridProgress:
    """Counts runs by state and estimates the time left.

    The ETA assumes the runs still queued take as long as the mean finished
    run of this invocation, spread over ``slots`` slots; before any run has
    finished it is unknown.

    Args:
        total: Runs in the selection.
        slots: Slots runs execute on at once.
        run_dirs: Run label -> run dir, to show running runs' iterations.
        stream: Where to write (default: stdout).
    """

    def __init__(self, total: int, slots: int, run_dirs: Dict[str, str],
                 stream: Optional[TextIO] = None) -> None:
        self.total = total
        self.slots = slots
        self.run_dirs = run_dirs
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self.t0 = time.time()
        # finished/failed: in this invocation; earlier_*: skipped runs
        # (earlier_skipped: another runner or a Slurm job has them).
        self.counts = dict(finished=0, failed=0, earlier_finished=0,
                           earlier_failed=0)
        self.running: Dict[str, float] = {}
        self.durations: List[float] = []

    @property
    def queued(self) -> int:
        return self.total - sum(self.counts.values()) - len(self.running)

    def _attempt_rate(self, label: str) -> Optional[Tuple[float, int, int]]:
        """A running run's rate in its current attempt.

        Only the iterations this attempt trained count against its elapsed
        time: a run resumed at 50 of 200 that trained 10 iterations in
        10 s has 140 s left, not 150 iterations at 60 per 10 s.

        Returns:
            (seconds per iteration, iterations left, total iterations), or
            None before the attempt has a rate.
        """
        run_dir = self.run_dirs.get(label, '')
        progress = read_json(osp.join(run_dir, PROGRESS)) or {}
        done, total = progress.get('iter') or 0, progress.get('max_iters')
        elapsed = progress.get('elapsed_s') or 0.0
        start = progress.get('start_iter')
        if start is None and run_dir:
            # A record from before progress.json had start_iter.
            start = next((r.get('iter') for r in read_attempts(run_dir)
                          if r.get('event') == 'start' and r.get('attempt')
                          == progress.get('attempt')), None)
        trained = done - (start or 0)
        # The first iterations carry the start-up: no rate from them.
        if total and max(5, total // 50) <= trained and done <= total and \
                elapsed > 0:
            return elapsed / trained, total - done, total
        return None

    def _running_left_s(self, label: str, started: float,
                        mean: Optional[float]) -> Optional[float]:
        """A running run's time left: from its own iteration rate once it
        has one, else the mean run's duration less its age."""
        rate = self._attempt_rate(label)
        if rate is not None:
            return rate[0] * rate[1]
        if mean is None:
            return None
        return max(mean - (time.time() - started), 0.0)

    def eta_s(self) -> Optional[float]:
        """Seconds left, or None while unknown.

        A run that outlives the mean is not "0 s from done": its own rate
        estimates it; with no rate yet the ETA is unknown rather than 0.
        """
        mean = (sum(self.durations) / len(self.durations)
                if self.durations else None)
        if mean is None:
            # Before any run finishes: a running run's projected length
            # (its rate times all its iterations, resumed or not).
            projected = [rate[0] * rate[2] for label in self.running
                         if (rate := self._attempt_rate(label)) is not None]
            if projected:
                mean = sum(projected) / len(projected)
            elif self.queued:
                return None
        running = [self._running_left_s(label, started, mean)
                   for label, started in self.running.items()]
        if any(left is None for left in running):
            return None
        left = (self.queued * mean if self.queued else 0.0) + sum(running)
        if self.running and left <= 0:
            return None
        return left / self.slots

    def status_line(self) -> str:
        c = self.counts
        done = c['finished'] + c['earlier_finished']
        failed = c['failed'] + c['earlier_failed']
        parts = [f'done {done}/{self.total}', f'running {len(self.running)}',
                 f'failed {failed}', f'queued {self.queued}',
                 f'elapsed {fmt_duration(time.time() - self.t0)}',
                 f'ETA {fmt_duration(self.eta_s())}']
        iters = []
        for label in sorted(self.running):
            progress = read_json(osp.join(self.run_dirs.get(label, ''),
                                          PROGRESS)) or {}
            if progress.get('max_iters'):
                iters.append(f'{label} {progress["iter"]}/'
                             f'{progress["max_iters"]}')
        line = ' | '.join(parts)
        return line + (' || ' + ', '.join(iters) if iters else '')

    def _print(self, message: Optional[str] = None) -> None:
        if self.tty:
            self.stream.write('\r\033[K')
            if message:
                self.stream.write(message + '\n')
            self.stream.write(self.status_line())
        else:
            if message:
                self.stream.write(message + '\n')
            self.stream.write('  [' + self.status_line() + ']\n')
        self.stream.flush()

    def started(self, label: str, detail: str) -> None:
        # A retry keeps the first attempt's start: the ETA counts both.
        self.running.setdefault(label, time.time())
        self._print(f'{label}: {detail}')

    def ended(self, label: str, status: str, detail: str = '') -> None:
        started = self.running.pop(label, None)
        if status == 'finished' and started is not None:
            self.durations.append(time.time() - started)
        key = status if started is not None else f'earlier_{status}'
        self.counts[key] = self.counts.get(key, 0) + 1
        self._print(f'{label}: {detail or status}')

    def note(self, message: str) -> None:
        self._print(message)

    def tick(self) -> None:
        self._print()

    def close(self) -> None:
        if self.tty:
            self.stream.write('\n')
            self.stream.flush()
