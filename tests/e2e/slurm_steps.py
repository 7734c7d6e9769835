"""Steps the real-Slurm tests (``test_slurm_cluster.py``) share: grids on
the built-in set, the runner with the Slurm executor, and what ``squeue``
and the runner's output say."""
import os
import os.path as osp
import re
import select
import subprocess
import sys
import time

import yaml
from helpers import TINY_BATCH, run_grid_cli, tiny_dataset_entry, wait_for

from experiments.store import PROJECT_ROOT, read_attempts

SLURM_ARGS = ['--executor', 'slurm', '--cpus-per-gpu', '1',
              '--mem-gb-per-gpu', '1', '--time-min', '30', '--tick', '1']


def grid_file(tmp_path, name, dataset, models, seeds=(0,), max_iters=2,
              arms=None, overrides=None) -> str:
    path = tmp_path / f'{name}.yaml'
    path.write_text(yaml.safe_dump(dict(
        **TINY_BATCH,
        name=name, work_dir=str(tmp_path / name), models=models,
        arms=arms or {'base': {}}, seeds=list(seeds),
        datasets={'tiny': tiny_dataset_entry(dataset)},
        overrides={'train_cfg.max_iters': max_iters,
                   'default_hooks.checkpoint.interval': 2,
                   **(overrides or {})})))
    return str(path)


def run_slurm_grid(grid, *args, executor=SLURM_ARGS, timeout=420):
    return run_grid_cli(grid, *executor, *args, timeout=timeout)


def submitted(out: str) -> dict:
    """``{label: job id}`` from the runner's "submitted as job" lines."""
    return dict(re.findall(r'^(\S+): submitted as job (\S+)$', out, re.M))


def squeue(slurm, fmt='%i|%T') -> dict:
    out = slurm.run(['squeue', '-h', '--states=all', '-r', '-o', fmt],
                    timeout=30, check=True).stdout
    return {line.split('|')[0]: line.split('|')[1:]
            for line in out.splitlines() if line}


# slurmd refuses a job credential created in the second of the kill that
# requeued the job, or earlier: the restarted job then dies at once
# ("Killing non-startable batch JobId=2: Job credential revoked" in
# slurmctld.log) and ends FAILED. Slurm's own hold on a requeued job
# (cred_expire + 1 s, 121 s by default) is for this; the tests release a
# job this long after squeue first shows it requeued (PENDING), which comes
# after the kill.
REQUEUE_HOLD_S = 2.0


def release_requeued(slurm, job) -> None:
    """Wait for ``job`` to be requeued, then start it without Slurm's
    two-minute hold."""
    wait_for(lambda: squeue(slurm).get(job, ['?'])[0] == 'PENDING', 120,
             f'job {job} to be requeued')
    time.sleep(REQUEUE_HOLD_S)
    slurm.run(['scontrol', 'update', f'JobId={job}', 'StartTime=now'],
              timeout=30, check=True)


def run_dir_of(work_dir, label_part) -> str:
    [found] = [osp.join(work_dir, d) for d in os.listdir(work_dir)
               if label_part in d and osp.isdir(osp.join(work_dir, d))
               and d.count('__') == 4]
    return found


def launches(run_dir):
    return [r for r in read_attempts(run_dir) if r['event'] == 'launch']


def set_partition(slurm, state):
    slurm.run(['scontrol', 'update', 'PartitionName=debug',
               f'State={state}'], timeout=30, check=True)


def submit_and_collect(slurm, grid, done):
    """The arrays' layout checked while the partition is down, the 2-GPU
    array cancelled, and the collecting invocation started: returns
    ``(jobs, collecting process, its output so far)`` once it has said
    that both 1-GPU runs are already queued."""
    jobs = submitted(done.stdout)
    assert len(jobs) == 4, done.stdout
    assert 'run the same command again to collect' in done.stdout
    queue = squeue(slurm, '%i|%F|%K|%b')
    arrays = {}
    for label, job_id in jobs.items():
        array_id, task, tres = queue[job_id]
        arrays.setdefault(label.split('/')[0], set()).add(
            (array_id, task, tres))
    # Real arrays: one per GPU count, a task per seed, GPUs per node asked.
    one, two = arrays['one'], arrays['two']
    assert {a for a, _, _ in one} & {a for a, _, _ in two} == set()
    assert len({a for a, _, _ in one}) == len({a for a, _, _ in two}) == 1
    assert {t for _, t, _ in one} == {t for _, t, _ in two} == {'0', '1'}
    assert {g for _, _, g in one} == {'gres:gpu:1'}
    assert {g for _, _, g in two} == {'gres:gpu:2'}
    # The 2-GPU runs are cancelled while they wait (a 2-process run as a
    # job is test_two_processes_are_one_job).
    slurm.run(['scancel', next(iter(two))[0]], timeout=30, check=True)
    collect = subprocess.Popen(
        [sys.executable, 'experiments/run_grid.py', grid, *SLURM_ARGS,
         '--only', 'model=one'], cwd=PROJECT_ROOT, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env=dict(os.environ, PYTHONUNBUFFERED='1'))
    seen, deadline = '', time.monotonic() + 300
    while seen.count('already queued as Slurm job') < 2:
        ready, _, _ = select.select([collect.stdout], [], [], 5)
        if not ready:
            assert time.monotonic() < deadline, seen
            continue
        # The pipe's own bytes: a buffered readline would keep a second
        # line that select() then never reports.
        chunk = os.read(collect.stdout.fileno(), 65536).decode()
        assert chunk, seen   # it ended without finding them queued
        seen += chunk
    return jobs, collect, seen
