"""What Slurm says about a grid's jobs, from ``squeue`` alone.

``sacct`` needs Slurm's accounting database, which many clusters restrict or
do not run (submitit's job state is then ``UNKNOWN`` forever), so nothing
here uses it. ``squeue --states=all`` lists queued and running jobs and,
for ``MinJobAge`` seconds (300 by default), ended ones with their final
state; a job it no longer lists has ended. Whether an ended job finished
its run is read from the run dir, never from Slurm.
"""
import getpass
import os.path as osp
import subprocess
from typing import Dict, List, Optional, Tuple

from experiments.store import read_json

SLURM_JOB = 'slurm_job.json'
GONE = 'GONE'  # no longer listed by squeue: ended
# Final states. Anything else (PENDING, RUNNING, REQUEUED, COMPLETING,
# SUSPENDED, REQUEUE_HOLD, ...) is a job that still holds its run.
ENDED = frozenset({'COMPLETED', 'CANCELLED', 'FAILED', 'TIMEOUT',
                   'NODE_FAIL', 'PREEMPTED', 'BOOT_FAIL', 'DEADLINE',
                   'OUT_OF_MEMORY', 'REVOKED', GONE})


class SlurmQueryError(RuntimeError):
    """``squeue`` did not answer; the message says how."""


def job_states() -> Dict[str, str]:
    """``{job id: state}`` for this user's jobs; array tasks as ``123_4``.

    Raises:
        SlurmQueryError: ``squeue`` is missing, failed or timed out.
    """
    command = ['squeue', '-h', '--states=all', '-r', '-u', getpass.getuser(),
               '-o', '%i|%T']
    try:
        out = subprocess.run(command, capture_output=True, text=True,
                             timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SlurmQueryError(f'{" ".join(command)}: {e}') from None
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ['no output'])[-1]
        raise SlurmQueryError(f'squeue exited {out.returncode}: {last}')
    states = {}
    for line in out.stdout.splitlines():
        job_id, _, state = line.strip().partition('|')
        if job_id:
            # "CANCELLED by 0" in some versions: the state is the first word.
            states[job_id] = state.split()[0] if state else 'UNKNOWN'
    return states


def state_of(job_id: str, states: Dict[str, str]) -> str:
    return states.get(job_id, GONE)


def is_active(state: str) -> bool:
    return state not in ENDED


def recorded_job(run_dir: str) -> Optional[dict]:
    """The run's ``slurm_job.json`` (its last submission), or None."""
    try:
        record = read_json(osp.join(run_dir, SLURM_JOB))
    except ValueError:
        return None
    return record if record and record.get('cluster') == 'slurm' else None


def recorded_states(run_dirs: List[str]) -> Dict[str, Tuple[str, str]]:
    """``{run dir: (job id, state)}`` of each run's last Slurm job.

    One ``squeue`` call, and only when a run was submitted to Slurm. Empty
    when ``squeue`` cannot be asked (a machine outside the cluster): the
    runs' locks still keep two processes from training one run.
    """
    records = {d: r for d in run_dirs if (r := recorded_job(d))}
    if not records:
        return {}
    try:
        states = job_states()
    except SlurmQueryError:
        return {}
    return {d: (r['job_id'], state_of(r['job_id'], states))
            for d, r in records.items()}


def active_jobs(run_dirs: List[str]) -> Dict[str, str]:
    """``{run dir: job id}`` for the runs a Slurm job still holds."""
    return {d: job_id for d, (job_id, state)
            in recorded_states(run_dirs).items() if is_active(state)}


def job_logs(work_dir: str, job_id: str) -> List[str]:
    """The job's stdout and stderr files (task 0): submitit logs to the
    first, Slurm's own messages (``CANCELLED``, time limit) go to the
    second."""
    stem = osp.join(work_dir, 'submitit', job_id, f'{job_id}_0_log')
    return [stem + '.out', stem + '.err']
