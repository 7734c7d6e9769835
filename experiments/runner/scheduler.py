"""Pack jobs onto slots (GPUs, or CPU slots) and wait for them without polling.

The scheduler knows nothing about training: a :class:`Job` says how many
slots it needs, how to start its process on given slots and what its exit
code means. ``run_grid.py`` builds jobs from grid runs;
``tools/benchmark_scheduler.py`` builds dummy ones to measure idle time.

Children are waited on through Linux pidfds, so a slot is refilled the moment
its process exits rather than at the next poll.
"""
import dataclasses
import os
import selectors
import signal
import subprocess
import time
from typing import Callable, Dict, List, Optional, Union

# What ``Job.start`` returns: a process, a final status (the job needed no
# process: e.g. finished by another runner), or None (busy elsewhere: retry).
StartResult = Union[subprocess.Popen, str, None]
# What ``Job.finish`` returns for "start me again now" (a retry).
AGAIN = 'again'


@dataclasses.dataclass
class Job:
    """One unit of work for :class:`SlotScheduler`.

    Attributes:
        name: Shown in progress messages.
        start: Called with the slot ids the job got; see ``StartResult``.
        finish: Called with the exit code once the process ended; returns
            the job's final status (e.g. ``finished``/``failed``), ``AGAIN``
            to start it again at once (first in the queue), or None when it
            must be tried again later (it was locked).
        slots: How many slots the job occupies at once.
    """

    name: str
    start: Callable[[List[str]], StartResult]
    finish: Callable[[int], Optional[str]]
    slots: int = 1


@dataclasses.dataclass
class SchedulerStats:
    """Slot occupancy of one ``SlotScheduler.run``.

    ``idle_fraction`` counts every slot-second without a process, including
    the tail where fewer jobs than slots are left; ``idle_while_queued``
    counts only the slot-seconds lost while a job that fit was waiting, i.e.
    what the scheduler itself is responsible for.
    """

    slots: int
    wall_s: float = 0.0
    busy_slot_s: float = 0.0
    queued_idle_slot_s: float = 0.0

    @property
    def idle_fraction(self) -> float:
        total = self.slots * self.wall_s
        return 1.0 - self.busy_slot_s / total if total else 0.0

    @property
    def idle_while_queued(self) -> float:
        total = self.slots * self.wall_s
        return self.queued_idle_slot_s / total if total else 0.0


@dataclasses.dataclass
class _Running:
    job: Job
    proc: subprocess.Popen
    slot_ids: List[str]
    started: float
    pidfd: int


class SlotScheduler:
    """Run jobs on a fixed set of slots, first fit in queue order.

    Args:
        slot_ids: One id per slot: GPU indices (``'0'``, ``'1'``...) or CPU
            slot names.
        on_event: ``on_event(kind, job, detail)`` for ``start``, ``end``,
            ``skip`` (started nothing), ``again`` (ended, started again at
            once), ``deferred`` and ``tick`` (every ``tick_s`` seconds).
        tick_s: How often ``tick`` fires and deferred jobs are retried.
        kill_grace_s: On interrupt, how long children get to exit after
            SIGTERM before they are killed.
    """

    def __init__(self, slot_ids: List[str],
                 on_event: Optional[Callable] = None, tick_s: float = 5.0,
                 kill_grace_s: float = 30.0) -> None:
        if not slot_ids:
            raise ValueError('the scheduler needs at least one slot')
        self.slot_ids = list(slot_ids)
        self.on_event = on_event or (lambda *a: None)
        self.tick_s = tick_s
        self.kill_grace_s = kill_grace_s
        self.running: List[_Running] = []
        self.queued: List[Job] = []
        self.deferred: List[Job] = []

    def _free_slots(self) -> List[str]:
        busy = {s for r in self.running for s in r.slot_ids}
        return [s for s in self.slot_ids if s not in busy]

    def _fill(self, results: Dict[str, str]) -> None:
        """Start queued jobs while one fits (first fit, in queue order)."""
        i = 0
        while i < len(self.queued):
            free = self._free_slots()
            job = self.queued[i]
            if job.slots > len(free):
                i += 1
                continue
            self.queued.pop(i)
            outcome = job.start(free[:job.slots])
            if outcome is None:
                self.deferred.append(job)
                self.on_event('deferred', job, None)
            elif isinstance(outcome, str):
                results[job.name] = outcome
                self.on_event('skip', job, outcome)
            else:
                self.running.append(_Running(
                    job, outcome, free[:job.slots], time.monotonic(),
                    os.pidfd_open(outcome.pid)))
                self.on_event('start', job, free[:job.slots])

    def run(self, jobs: List[Job]) -> Dict[str, str]:
        """Run every job to a final status; return ``{name: status}``."""
        too_big = [j.name for j in jobs if j.slots > len(self.slot_ids)]
        if too_big:
            raise ValueError(f'{too_big[0]} needs more slots than the '
                             f'{len(self.slot_ids)} given')
        self.queued = list(jobs)
        self.deferred = []
        self.stats = SchedulerStats(slots=len(self.slot_ids))
        results: Dict[str, str] = {}
        t0 = last = last_tick = time.monotonic()
        selector = selectors.DefaultSelector()
        try:
            self._fill(results)
            for r in self.running:
                selector.register(r.pidfd, selectors.EVENT_READ, r)
            while self.running or self.queued or self.deferred:
                timeout = max(0.0, last_tick + self.tick_s - time.monotonic())
                ready = selector.select(timeout) if self.running else (
                    time.sleep(timeout) or [])
                now = time.monotonic()
                self._account(now - last)
                last = now
                for key, _ in ready:
                    r = key.data
                    selector.unregister(r.pidfd)
                    os.close(r.pidfd)
                    self.running.remove(r)
                    code = r.proc.wait()
                    self.stats.busy_slot_s += len(r.slot_ids) * (
                        now - r.started)
                    status = r.job.finish(code)
                    if status == AGAIN:
                        self.queued.insert(0, r.job)
                        self.on_event('again', r.job, code)
                    elif status is None:
                        self.deferred.append(r.job)
                        self.on_event('deferred', r.job, None)
                    else:
                        results[r.job.name] = status
                        self.on_event('end', r.job, status)
                if now - last_tick >= self.tick_s:
                    last_tick = now
                    # Jobs another process held: try them again.
                    self.queued.extend(self.deferred)
                    self.deferred = []
                    self.on_event('tick', None, None)
                before = len(self.running)
                self._fill(results)
                for r in self.running[before:]:
                    selector.register(r.pidfd, selectors.EVENT_READ, r)
        except BaseException:
            self._stop_children()
            raise
        finally:
            selector.close()
            self.stats.wall_s = time.monotonic() - t0
        return results

    def _account(self, dt: float) -> None:
        free = len(self._free_slots())
        if free and any(j.slots <= free for j in self.queued):
            self.stats.queued_idle_slot_s += dt * free

    def _stop_children(self) -> None:
        """SIGTERM every running child (its run stays resumable), then kill."""
        for r in self.running:
            if r.proc.poll() is None:
                os.killpg(r.proc.pid, signal.SIGTERM) \
                    if _leads_group(r.proc) else r.proc.terminate()
        deadline = time.monotonic() + self.kill_grace_s
        for r in self.running:
            try:
                r.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                r.proc.kill()
                r.proc.wait()
            os.close(r.pidfd)
        self.running = []


def _leads_group(proc: subprocess.Popen) -> bool:
    try:
        return os.getpgid(proc.pid) == proc.pid
    except ProcessLookupError:
        return False
