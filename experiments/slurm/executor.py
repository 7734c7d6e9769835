"""Run a grid as Slurm jobs through submitit: one job per run, in arrays.

Runs are grouped by GPU count; each group is one array job (``sbatch
--array``) with at most ``--max-parallel`` tasks running. What a job does on
its node is in ``experiments/slurm/job.py``. Waiting for the jobs asks
``squeue`` only (``experiments/slurm/queue.py``): ``sacct`` is not needed.
A job that ends without finishing its run (cancelled, a node failure, a
crash before training) fails the run with the tail of the job's Slurm log.

A second invocation of the same command skips finished runs, waits for (or,
with ``--no-wait``, just reports) runs whose job is still queued, and
submits the rest. ``--executor submitit-local`` runs the same jobs with
submitit's local executor, which needs no Slurm.
"""
import os.path as osp
import sys
import time
from typing import Dict, List

import submitit

from experiments.grid.spec import GridSpec
from experiments.grid.table import grid_completion
from experiments.runner.grid_progress import GridProgress
from experiments.runner.launch import (
    PlannedRun,
    log_tail,
    prepare_run_dir,
    record_failure,
)
from experiments.runner.lock import RunLock
from experiments.slurm.job import STOPPED_BY_SIGTERM, STOPPED_BY_USR2, SlurmRun
from experiments.slurm.queue import (
    SLURM_JOB,
    SlurmQueryError,
    is_active,
    job_logs,
    job_states,
    recorded_states,
    state_of,
)
from experiments.store import (
    FAILED,
    RESULTS,
    DamagedFileError,
    atomic_write_json,
    read_attempts,
    read_json,
    read_run_meta,
    run_status,
    warn,
    write_results,
)

LOG_LINES = 12


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
                      slurm_signal_delay_s=args.signal_delay_s)
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
    waiting: Dict[str, tuple] = {}  # label -> (planned run, job id, job)
    jobs_of = recorded_states([p.run_dir for p in planned]) \
        if args.executor == 'slurm' else {}
    for p in planned:
        status = run_status(p.run_dir)
        if status == 'finished' or (status == 'failed'
                                    and not args.retry_failed):
            print(f'{p.run.label}: {status} earlier, skipped')
            continue
        job_id, state = jobs_of.get(p.run_dir, ('', ''))
        if job_id and is_active(state):
            print(f'{p.run.label}: already queued as Slurm job {job_id}')
            waiting[p.run.label] = (p, job_id, None)
            continue
        if job_id:
            print(f'{p.run.label}: Slurm job {job_id} ended ({state}) before '
                  f'the run finished; submitting it again (it resumes from '
                  f'its last checkpoint)')
        lock = RunLock(p.run_dir)
        if not lock.acquire():
            print(f'{p.run.label}: being trained by {lock.holder()}; skipped')
            continue
        try:
            prepare_run_dir(p, grid)
        finally:
            lock.release()
        todo.setdefault(p.processes, []).append(p)

    submitted = 0
    for gpus, group in sorted(todo.items()):
        executor, cluster = make_executor(args, grid, work_dir, gpus)
        with executor.batch():
            jobs = [executor.submit(SlurmRun(
                p.run_dir, gpus, args.retry_failed, args.signal_retries))
                for p in group]
        for p, job in zip(group, jobs):
            atomic_write_json(osp.join(p.run_dir, SLURM_JOB), dict(
                job_id=str(job.job_id), cluster=cluster,
                submitted=time.strftime('%Y-%m-%dT%H:%M:%S')))
            print(f'{p.run.label}: submitted as job {job.job_id}')
            waiting[p.run.label] = (p, str(job.job_id), job)
            submitted += 1
    if args.no_wait or not waiting:
        write_results(work_dir, run_dirs)
        if waiting:
            print(f'{submitted} job(s) submitted, {len(waiting)} queued in '
                  f'all; run the same command again to collect results into '
                  f'{osp.join(work_dir, RESULTS)}')
            return 0
        return _completion(planned)
    return _wait(args, waiting, work_dir, run_dirs, planned)


def _states(executor: str, waiting: Dict[str, tuple]) -> Dict[str, str]:
    if executor == 'slurm':
        return job_states()
    # submitit's local executor knows its own processes.
    return {job_id: 'COMPLETED' if job.done() else 'RUNNING'
            for _, job_id, job in waiting.values()}


def _wait(args, waiting: Dict[str, tuple], work_dir: str,
          run_dirs: List[str], planned: List[PlannedRun]) -> int:
    progress = GridProgress(len(waiting), args.max_parallel,
                            {label: p.run_dir
                             for label, (p, _, _) in waiting.items()})
    pending = dict(waiting)
    unanswered = 0
    try:
        while pending:
            try:
                states = _states(args.executor, pending)
                unanswered = 0
            except SlurmQueryError as e:
                unanswered += 1
                if unanswered in (1, 10) or unanswered % 60 == 0:
                    warn(f'{e}; still waiting for {len(pending)} job(s)')
                time.sleep(min(args.tick, 5.0))
                continue
            for label, (p, job_id, _) in list(pending.items()):
                state = state_of(job_id, states)
                if state == 'RUNNING' and label not in progress.running:
                    progress.started(label, f'running as job {job_id}')
                if is_active(state):
                    continue
                del pending[label]
                progress.running.setdefault(label, time.time())
                status, detail = _collect(p, job_id, state, work_dir)
                progress.ended(label, status, f'job {job_id}: {detail}')
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


def stopped_by_slurm(run_dir: str) -> str:
    """The cause recorded when Slurm stopped the run's last attempt (its
    ``end`` record's ``cause``), or ''."""
    ends = [r for r in read_attempts(run_dir) if r.get('event') == 'end']
    cause = ends[-1].get('cause', '') if ends else ''
    return cause if cause in (STOPPED_BY_SIGTERM, STOPPED_BY_USR2) else ''


def _collect(p: PlannedRun, job_id: str, state: str,
             work_dir: str) -> tuple:
    """``(status, detail)`` of a run whose job has ended.

    A job that ended with its run neither finished nor failed (cancelled,
    killed with its node, crashed before training) fails the run here,
    with the job's Slurm log, unless another process is training it or
    Slurm stopped its last attempt (``interrupted``: the same command
    resumes it, as the job's log says).
    """
    status = run_status(p.run_dir)
    if status == 'finished':
        return status, 'finished'
    logs = job_logs(work_dir, job_id)
    tail = ''.join(f'{osp.basename(log)}: {line}\n' for log in logs
                   for line in log_tail(log, LOG_LINES).splitlines())
    if status != 'failed':
        stopped = stopped_by_slurm(p.run_dir)
        if stopped:
            # scancel, the time limit, preemption without requeue: the job's
            # log said the run resumes, so it is not failed here either.
            return 'interrupted', (
                f'ended ({state}): {stopped}; the run resumes from its last '
                f'checkpoint when the same command runs again')
        lock = RunLock(p.run_dir)
        if not lock.acquire():
            return 'failed', (f'ended ({state}); the run is being trained '
                              f'by {lock.holder()}, not collected')
        try:
            record_failure(p.run_dir, read_run_meta(p.run_dir),
                           f'Slurm job {job_id} ended ({state}) before the '
                           f'run finished')
        finally:
            lock.release()
    try:
        failed = read_json(osp.join(p.run_dir, FAILED)) or {}
        failed.update(slurm_job=job_id, slurm_state=state, slurm_logs=logs,
                      slurm_log_tail=tail)
        atomic_write_json(osp.join(p.run_dir, FAILED), failed)
    except DamagedFileError as e:
        failed = dict(error=str(e))
    detail = (f'FAILED: {failed.get("error")}\n  see '
              f'{osp.join(p.run_dir, "run.log")} and the Slurm log '
              f'{logs[0][:-4]}.{{out,err}}')
    if tail:
        detail += ', which ends:\n' + ''.join(
            f'    | {line}\n' for line in tail.splitlines()).rstrip('\n')
    return 'failed', detail


def _completion(planned: List[PlannedRun]) -> int:
    code, summary = grid_completion({p.run.label: p.run_dir
                                     for p in planned})
    print(summary, file=sys.stderr if code else sys.stdout)
    return code
