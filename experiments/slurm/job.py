"""What a Slurm job runs on its node: one run, to a final status.

The job runs exactly what the local scheduler runs on a slot
(:class:`~experiments.runner.launch.RunAttempt`): take the run's lock, skip a
finished run, train in a child process (``torchrun`` for several GPUs),
record the end. Two ways Slurm stops a job, both ending in a requeue that
resumes from the run's last checkpoint:

* ``--signal`` (submitit asks for ``USR2`` before the time limit, and a
  preempting scheduler can send it): submitit calls
  :meth:`SlurmRun.checkpoint`, which stops the child, records the attempt
  as stopped by Slurm, and submitit requeues the job (``scontrol
  requeue``).
* ``SIGTERM`` to every process of the job (``scontrol requeue``, preemption
  with ``PreemptMode=REQUEUE``, ``scancel``, the time limit itself): the
  child dies with it; the attempt is recorded as stopped by Slurm, so it
  neither fails the run nor counts against ``--signal-retries``. A requeued
  job starts the run again; a cancelled one leaves it to the next
  ``run_grid.py``.

A child killed by a signal while the job lives (the OOM killer) is retried
inside the job, like on a local slot.
"""
import os
import signal
import subprocess
import time
from typing import Optional

import submitit

from experiments.runner.launch import SIGNAL_RETRIES, RunAttempt
from experiments.runner.scheduler import AGAIN

# Why an attempt ended, in attempts.jsonl and the row's signals column.
STOPPED_BY_SIGTERM = 'Slurm stopped the job'
STOPPED_BY_USR2 = 'Slurm time-limit/preemption signal; requeued'


def slurm_job_id(env: Optional[dict] = None) -> str:
    """``123_4`` for array task 4 of job 123, ``123`` otherwise."""
    env = os.environ if env is None else env
    if env.get('SLURM_ARRAY_JOB_ID'):
        return f'{env["SLURM_ARRAY_JOB_ID"]}_{env["SLURM_ARRAY_TASK_ID"]}'
    return env.get('SLURM_JOB_ID', 'local')


class SlurmRun(submitit.helpers.Checkpointable):
    """The callable a Slurm job runs.

    Args:
        run_dir: The run's directory, written at submission.
        processes: Training processes (one per GPU the job has).
        retry_failed: Whether a failed run is started again.
        signal_retries: Automatic retries after signal kills in a row.
    """

    def __init__(self, run_dir: str, processes: int, retry_failed: bool,
                 signal_retries: int = SIGNAL_RETRIES) -> None:
        self.run_dir = run_dir
        self.processes = processes
        self.retry_failed = retry_failed
        self.signal_retries = signal_retries
        self._proc: Optional[subprocess.Popen] = None
        self._attempt: Optional[RunAttempt] = None
        self._stopped_by = ''

    def __call__(self) -> str:
        previous = signal.signal(signal.SIGTERM, self._on_sigterm)
        try:
            return self._run()
        finally:
            signal.signal(signal.SIGTERM, previous)

    def _run(self) -> str:
        note = f'in Slurm job {slurm_job_id()}'
        env = dict(os.environ)
        cpus = int(env.get('SLURM_CPUS_PER_TASK') or 0)
        if cpus and 'OMP_NUM_THREADS' not in env:
            # Without CPU binding (TaskPlugin=task/none) each process would
            # start a thread per core of the node, not of its allocation.
            env['OMP_NUM_THREADS'] = str(
                max(1, cpus // max(self.processes, 1)))
        while True:
            self._attempt = RunAttempt(self.run_dir, self.retry_failed,
                                       self.processes,
                                       signal_retries=self.signal_retries)
            outcome = self._attempt.begin(env, note=note)
            if outcome is None:
                return 'locked by another process'
            if isinstance(outcome, str):
                return f'{outcome} earlier'
            self._proc = outcome
            # poll, not wait(): wait() holds a lock that checkpoint(), run
            # from a signal handler on this thread, would wait on forever.
            while self._proc.poll() is None:
                time.sleep(0.5)
            code = self._proc.returncode
            if code < 0 and not self._stopped_by:
                # The SIGTERM to this process may land just after the one
                # that killed the child: let it, so the kill is attributed.
                time.sleep(1.0)
            status = self._attempt.end(code, stopped_by=self._stopped_by)
            self._proc = None
            if status != AGAIN:
                return status or 'locked by another process'

    def _on_sigterm(self, signum, frame) -> None:
        self._stopped_by = STOPPED_BY_SIGTERM
        if self._proc is not None and self._proc.poll() is None:
            try:
                os.killpg(self._proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def checkpoint(self, *args, **kwargs):
        """On ``USR2`` (timeout or preemption): stop the child, record it,
        hand submitit the same run to requeue."""
        proc, attempt = self._proc, self._attempt
        if proc is not None:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if attempt is not None:
                attempt.end(proc.returncode, stopped_by=STOPPED_BY_USR2)
            self._proc = None
        return submitit.helpers.DelayedSubmission(SlurmRun(
            self.run_dir, self.processes, self.retry_failed,
            self.signal_retries))
