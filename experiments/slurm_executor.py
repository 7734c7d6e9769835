"""Run a grid as Slurm jobs through submitit: one job per run, in arrays.

The job runs on its node exactly what the local scheduler runs on a slot
(:class:`~experiments.run_launch.RunAttempt`): take the run's lock, skip a
finished run, train in a child process (``torchrun`` for several GPUs),
record a failure. A job that reaches its time limit or is preempted is
requeued by submitit (``checkpoint``) and resumes from the run's last
checkpoint. Runs are grouped by GPU count; each group is one array job with
at most ``--max-parallel`` tasks running.

``--executor submitit-local`` runs the same jobs with submitit's local
executor, which is how the tests exercise this path without Slurm.
"""
import os
import os.path as osp
import signal
import subprocess
import sys
import time
from typing import Dict, List

import submitit

from experiments.grid_progress import GridProgress
from experiments.grid_table import grid_completion
from experiments.grid_spec import GridSpec
from experiments.run_launch import PlannedRun, RunAttempt, prepare_run_dir
from experiments.run_lock import RunLock
from experiments.run_store import (RESULTS, atomic_write_json, read_json,
                                   run_status, write_results)

SLURM_JOB = 'slurm_job.json'
_ACTIVE = ('PENDING', 'RUNNING', 'REQUEUED', 'CONFIGURING', 'COMPLETING',
           'SUSPENDED', 'RESIZING')


class SlurmRun(submitit.helpers.Checkpointable):
    """The callable a Slurm job runs: one attempt at one run.

    Args:
        run_dir: The run's directory, written at submission.
        gpus: GPUs the job has (one process each).
        retry_failed: Whether a failed run is started again.
    """

    def __init__(self, run_dir: str, gpus: int, retry_failed: bool) -> None:
        self.run_dir = run_dir
        self.gpus = gpus
        self.retry_failed = retry_failed
        self._proc = None

    def __call__(self) -> str:
        attempt = RunAttempt(self.run_dir, self.retry_failed, self.gpus)
        job = os.environ.get('SLURM_JOB_ID', 'local')
        outcome = attempt.begin(dict(os.environ), note=f'in job {job}')
        if outcome is None:
            return 'locked by another process'
        if isinstance(outcome, str):
            return outcome
        self._proc = outcome
        return attempt.end(self._proc.wait()) or 'locked by another process'

    def checkpoint(self, *args, **kwargs):
        """On timeout or preemption: stop the child, requeue the same run."""
        if self._proc is not None and self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(60)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        return submitit.helpers.DelayedSubmission(
            SlurmRun(self.run_dir, self.gpus, self.retry_failed))


def _queued_in_slurm(run_dir: str) -> str:
    """The id of a Slurm job that still holds this run, or ''."""
    record = read_json(osp.join(run_dir, SLURM_JOB))
    if not record or record.get('cluster') != 'slurm':
        return ''
    try:
        out = subprocess.run(
            ['squeue', '-h', '-j', record['job_id'], '-o', '%T'],
            capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ''
    return record['job_id'] if any(s in out for s in _ACTIVE) else ''


def make_executor(args, grid: GridSpec, work_dir: str, gpus: int):
    cluster = 'local' if args.executor == 'submitit-local' else 'slurm'
    executor = submitit.AutoExecutor(
        folder=osp.join(work_dir, 'submitit', '%j'), cluster=cluster)
    params = dict(name=f'grid-{grid.name}', timeout_min=args.time_min,
                  gpus_per_node=gpus, tasks_per_node=1, nodes=1,
                  cpus_per_task=args.cpus_per_gpu * gpus)
    if cluster == 'slurm':
        params.update(mem_gb=args.mem_gb_per_gpu * gpus,
                      slurm_array_parallelism=args.max_parallel,
                      slurm_signal_delay_s=120)
        for key in ('partition', 'account', 'qos'):
            if getattr(args, key):
                params[f'slurm_{key}'] = getattr(args, key)
    executor.update_parameters(**params)
    return executor, cluster


def run_submitit(args, grid: GridSpec, planned: List[PlannedRun],
                 work_dir: str, run_dirs: List[str]) -> int:
    """Submit every runnable run; wait for them unless ``--no-wait``.

    Args:
        run_dirs: What ``results.csv`` lists (every run of the grid on disk).
    """
    todo: Dict[int, List[PlannedRun]] = {}
    for p in planned:
        status = run_status(p.run_dir)
        if status == 'finished' or (status == 'failed'
                                    and not args.retry_failed):
            print(f'{p.run.label}: {status} earlier, skipped')
            continue
        job_id = _queued_in_slurm(p.run_dir)
        if job_id:
            print(f'{p.run.label}: already queued as Slurm job {job_id}')
            continue
        lock = RunLock(p.run_dir)
        if not lock.acquire():
            print(f'{p.run.label}: being trained by {lock.holder()}; skipped')
            continue
        try:
            prepare_run_dir(p, grid)
        finally:
            lock.release()
        todo.setdefault(p.run.gpus, []).append(p)

    jobs = []
    for gpus, group in sorted(todo.items()):
        executor, cluster = make_executor(args, grid, work_dir, gpus)
        with executor.batch():
            submitted = [executor.submit(SlurmRun(
                p.run_dir, gpus, args.retry_failed)) for p in group]
        for p, job in zip(group, submitted):
            atomic_write_json(osp.join(p.run_dir, SLURM_JOB), dict(
                job_id=str(job.job_id), cluster=cluster,
                submitted=time.strftime('%Y-%m-%dT%H:%M:%S')))
            print(f'{p.run.label}: submitted as job {job.job_id}')
            jobs.append((p, job))
    if args.no_wait or not jobs:
        write_results(work_dir, run_dirs)
        print(f'{len(jobs)} job(s) submitted; run the same command again to '
              f'collect results into {osp.join(work_dir, RESULTS)}')
        if jobs:
            return 0
        return _completion(planned)

    progress = GridProgress(len(jobs), args.max_parallel,
                            {p.run.label: p.run_dir for p, _ in jobs})
    pending = list(jobs)
    try:
        while pending:
            for p, job in list(pending):
                if p.run.label not in progress.running and \
                        job.state in ('RUNNING', 'COMPLETED', 'FAILED'):
                    progress.started(p.run.label, f'job {job.job_id}')
                if job.done():
                    pending.remove((p, job))
                    try:
                        outcome = job.result()
                    except Exception as e:  # noqa: BLE001 -- job crashed
                        outcome = f'failed (job error: {e})'.splitlines()[0]
                    progress.running.setdefault(p.run.label, time.time())
                    status = run_status(p.run_dir)
                    progress.ended(p.run.label, 'finished'
                                   if status == 'finished' else 'failed',
                                   f'job {job.job_id}: {outcome}')
                    write_results(work_dir, run_dirs)
            if pending:
                time.sleep(min(args.tick, 5.0))
    except KeyboardInterrupt:
        print('stopped waiting; the jobs keep running (scancel to stop '
              'them). Run the same command again to collect results.',
              file=sys.stderr)
        return 130
    progress.close()
    write_results(work_dir, run_dirs)
    c = progress.counts
    print(f'done: {c["finished"]} finished, {c["failed"]} failed; results '
          f'in {osp.join(work_dir, RESULTS)}')
    return _completion(planned)


def _completion(planned: List[PlannedRun]) -> int:
    code, summary = grid_completion({p.run.label: p.run_dir
                                     for p in planned})
    print(summary, file=sys.stderr if code else sys.stdout)
    return code
