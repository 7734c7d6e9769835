"""``run_grid.py --executor slurm`` against a real Slurm (22.05, one node).

The cluster comes from ``tools/local_slurm.py`` (Debian's packages unpacked
into a cache, daemons as root, fake GPUs, no accounting). Where the packages
cannot be had or the daemons cannot start, every test here skips with the
reason. Slurm holds a requeued job for about two minutes (``BeginTime``);
the tests release it with ``scontrol update StartTime=now`` 2 s after it
shows ``PENDING`` (at once, its restart can fail: ``REQUEUE_HOLD_S`` in
``slurm_steps.py`` says why).
"""
import glob
import json
import os
import os.path as osp
import re
import subprocess
import sys
import time

import pytest
import torch
from helpers import (
    TINY_MASK_RCNN,
    last_checkpoint_iteration,
    load_script,
    wait_for,
)

from slurm_steps import (REQUEUE_HOLD_S, SLURM_ARGS, grid_file, launches,
                         release_requeued, run_dir_of, run_slurm_grid,
                         set_partition, squeue, submit_and_collect,
                         submitted)

from experiments.runner.lock import RunLock
from experiments.store import PROJECT_ROOT, read_attempts, read_results_csv

# A real Slurm daemon that only this file uses: under pytest-xdist's
# --dist loadfile one worker runs it while the other runs other files (its
# steps wait on Slurm's own clock: the time-limit test waits 60-90 s for
# USR2), so it is not `serial`.
pytestmark = [pytest.mark.slow]


@pytest.fixture(scope='module')
def slurm(tmp_path_factory):
    """A running single-node Slurm; this process's environment points at it
    (``squeue``, ``sbatch`` on PATH, ``SLURM_CONF``) while the tests run."""
    tool = load_script('tools/local_slurm.py', 'local_slurm')
    cluster = tool.LocalSlurm(str(tmp_path_factory.mktemp('slurm')), gpus=2)
    try:
        cluster.start()
    except tool.SlurmUnavailable as e:
        pytest.skip(f'no local Slurm cluster: {e}')
    saved = dict(os.environ)
    os.environ.update(cluster.env())
    try:
        yield cluster
    finally:
        os.environ.clear()
        os.environ.update(saved)
        cluster.stop()


def test_sacct_does_not_work_here_so_nothing_may_need_it(slurm):
    assert slurm.run(['sacct'], timeout=30).returncode != 0


def test_one_array_per_gpu_count_no_wait_then_collect(slurm, tiny_builtin,
                                                      tmp_path):
    grid = grid_file(tmp_path, 'arrays', tiny_builtin, models={
        'one': TINY_MASK_RCNN,
        'two': {'config': TINY_MASK_RCNN, 'gpus': 2}}, seeds=(0, 1))
    # The partition is down until the collecting invocation has seen the
    # jobs queued: a 2-iteration job may otherwise finish before it starts
    # (as it did beside another test worker), and "already queued" would
    # go untested.
    set_partition(slurm, 'DOWN')
    try:
        done = run_slurm_grid(grid, '--no-wait')
        assert done.returncode == 0, done.stdout + done.stderr
        jobs, collect, seen = submit_and_collect(slurm, grid, done)
    finally:
        set_partition(slurm, 'UP')
    out = seen + collect.communicate(timeout=420)[0]
    assert collect.returncode == 0, out
    for label in ('one/base/tiny/seed0', 'one/base/tiny/seed1'):
        assert f'{label}: already queued as Slurm job {jobs[label]}' in out
        assert f'{label}: job {jobs[label]}: finished' in out
    assert 'submitted as job' not in out
    df = read_results_csv(str(tmp_path / 'arrays' / 'results.csv'))
    assert sorted(df.model) == ['one', 'one']
    assert (df.status == 'finished').all()
    for run_dir in df.work_dir:
        [launch] = launches(run_dir)  # trained once, by its job
        assert launch['note'].startswith('in Slurm job ')
    # Another invocation submits nothing finished, and says what became of
    # the cancelled runs before it submits them again.
    again = run_slurm_grid(grid, '--no-wait')
    assert again.stdout.count('finished earlier, skipped') == 2
    resubmitted = submitted(again.stdout)
    assert sorted(resubmitted) == ['two/base/tiny/seed0',
                                   'two/base/tiny/seed1']
    for label in resubmitted:
        assert f'{label}: Slurm job {jobs[label]} ended (CANCELLED) before ' \
            f'the run finished; submitting it again' in again.stdout
    slurm.run(['scancel', resubmitted['two/base/tiny/seed0'].split('_')[0]],
              timeout=30, check=True)


def test_two_processes_are_one_job(slurm, tiny_builtin, tmp_path):
    """A 2-process run is one Slurm job asking 2 GPUs per node; on this
    GPU-less node its ranks are gloo CPU processes."""
    grid = grid_file(tmp_path, 'twoproc', tiny_builtin, models={
        'two': {'config': TINY_MASK_RCNN, 'processes': 2}})
    done = run_slurm_grid(grid)
    assert done.returncode == 0, done.stdout + done.stderr
    [row] = read_results_csv(str(tmp_path / 'twoproc' / 'results.csv')
                             ).itertuples()
    assert row.status == 'finished', row.error
    assert (row.world_size, row.images_per_process, row.total_batch) == (
        2, 1, 2)
    [launch] = launches(row.work_dir)
    assert launch['note'].startswith('in Slurm job ')
    log = open(osp.join(row.work_dir, 'run.log')).read()
    for rank in (0, 1):
        assert f'rank {rank} of 2: no CUDA, ranks joined with gloo' in log


def test_preempted_and_requeued_jobs_resume_and_finish_once(slurm,
                                                            tiny_builtin,
                                                            tmp_path):
    grid = grid_file(tmp_path, 'preempt', tiny_builtin,
                     models={'m': TINY_MASK_RCNN}, seeds=(0, 1), max_iters=16)
    done = run_slurm_grid(grid, '--no-wait')
    assert done.returncode == 0, done.stdout + done.stderr
    jobs = submitted(done.stdout)
    work_dir = str(tmp_path / 'preempt')
    usr2_dir, term_dir = (run_dir_of(work_dir, 'seed0'),
                          run_dir_of(work_dir, 'seed1'))
    usr2_job, term_job = jobs['m/base/tiny/seed0'], jobs['m/base/tiny/seed1']
    stopped_at = {}
    # What Slurm sends ahead of the time limit (--signal=USR2@...), and what
    # a preempting scheduler sends: submitit requeues the job itself.
    wait_for(lambda: last_checkpoint_iteration(usr2_dir) >= 2, 240,
             'a checkpoint')
    stopped_at[usr2_dir] = last_checkpoint_iteration(usr2_dir)
    slurm.run(['scancel', '--signal=USR2', usr2_job], timeout=30, check=True)
    # An operator's requeue: SIGTERM to every process of the job.
    wait_for(lambda: last_checkpoint_iteration(term_dir) >= 2, 240,
             'a checkpoint')
    stopped_at[term_dir] = last_checkpoint_iteration(term_dir)
    slurm.run(['scontrol', 'requeue', term_job], timeout=30, check=True)
    for job in (usr2_job, term_job):
        release_requeued(slurm, job)

    collect = run_slurm_grid(grid)
    assert collect.returncode == 0, collect.stdout + collect.stderr
    # Requeued, not resubmitted.
    assert 'submitted as job' not in collect.stdout
    df = read_results_csv(osp.join(work_dir, 'results.csv')).set_index(
        'work_dir')
    for run_dir, cause in ((usr2_dir, 'requeued'),
                           (term_dir, 'Slurm stopped the job')):
        row = df.loc[run_dir]
        assert row.status == 'finished' and row.iterations == 16
        assert row.attempts == 2 and cause in row.signals
        first, second = launches(run_dir)
        job = usr2_job if run_dir == usr2_dir else term_job
        assert first['note'] == second['note'] == f'in Slurm job {job}'
        ends = [r for r in read_attempts(run_dir) if r['event'] == 'end']
        assert ends[0]['cause'] and ends[0]['counts'] is False
        starts = [r for r in read_attempts(run_dir) if r['event'] == 'start']
        # Resumed from the checkpoint it had when it was stopped (or a
        # later one), not from the beginning.
        assert starts[1]['iter'] >= stopped_at[run_dir] > 0
        assert json.load(open(osp.join(run_dir, 'slurm_job.json')))[
            'job_id'] == job
    info = slurm.run(['scontrol', 'show', 'job', term_job], timeout=30).stdout
    assert 'Restarts=1' in info


def test_failed_runs_are_reported_with_their_slurm_log(slurm, tiny_builtin,
                                                       tmp_path):
    grid = grid_file(tmp_path, 'fails', tiny_builtin,
                     models={'m': TINY_MASK_RCNN}, max_iters=30, arms={
                     'nan': {'overrides': {
                         'model.data_preprocessor.std': [0, 0, 0]}},
                     'cancelled': {}})
    work_dir = str(tmp_path / 'fails')
    runner = subprocess.Popen(
        [sys.executable, 'experiments/run_grid.py', grid, *SLURM_ARGS],
        cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    try:
        wait_for(lambda: osp.isdir(work_dir) and any(
            'cancelled' in d for d in os.listdir(work_dir)), 60, 'a run dir')
        cancelled = run_dir_of(work_dir, 'cancelled')
        wait_for(lambda: last_checkpoint_iteration(cancelled) >= 2, 240,
                 'a checkpoint')
        job = json.load(open(osp.join(cancelled, 'slurm_job.json')))['job_id']
        slurm.run(['scancel', job], timeout=30, check=True)
        out, _ = runner.communicate(timeout=300)
    finally:
        runner.kill()
    assert runner.returncode == 1, out
    # The NaN run failed in its child: the error, no automatic retry.
    nan = run_dir_of(work_dir, 'nan')
    assert len(launches(nan)) == 1
    assert re.search(r'm/nan/tiny/seed0: job \S+: FAILED: FloatingPointError '
                     r'during train: non-finite loss', out), out
    # The cancelled job stopped its attempt as "stopped by Slurm": the job's
    # log says the run resumes, and the runner agrees (not failed, no
    # --retry-failed needed).
    assert re.search(rf'm/cancelled/tiny/seed0: job {job}: ended '
                     rf'\(CANCELLED\): Slurm stopped the job; the run resumes '
                     rf'from its last checkpoint when the same command runs '
                     rf'again', out), out
    assert not osp.isfile(osp.join(cancelled, 'FAILED.json'))
    df = read_results_csv(osp.join(work_dir, 'results.csv'))
    assert list(df.status) == ['failed']
    assert 'grid incomplete: 1 failed' in out and '1 not finished' in out


def test_local_runner_and_slurm_job_never_train_one_run(slurm, tiny_builtin,
                                                        tmp_path):
    grid = grid_file(tmp_path, 'both', tiny_builtin,
                     models={'m': TINY_MASK_RCNN}, seeds=(0, 1), max_iters=6)
    work_dir = str(tmp_path / 'both')
    # The local runner leaves the queued run to its job, even before the
    # job has started and taken the run's lock: the partition is down
    # meanwhile (a 6-iteration job may otherwise be over before the local
    # runner looks).
    set_partition(slurm, 'DOWN')
    try:
        done = run_slurm_grid(grid, '--only', 'seed=0', '--no-wait')
        assert done.returncode == 0, done.stdout + done.stderr
        [job] = submitted(done.stdout).values()
        local = run_slurm_grid(grid, '--only', 'seed=0',
                               executor=['--tick', '1'])
    finally:
        set_partition(slurm, 'UP')
    assert f'queued as Slurm job {job}; skipped' in local.stdout, local.stdout
    seed0 = run_dir_of(work_dir, 'seed0')
    # The other way round: a run a local runner trains (it holds the run's
    # lock) is not submitted.
    dry = run_slurm_grid(grid, '--only', 'seed=1', '--dry-run')
    seed1 = osp.join(work_dir, re.search(r'(\S+seed1__\w+)',
                                         dry.stdout).group(1))
    with RunLock(seed1):
        held = run_slurm_grid(grid, '--only', 'seed=1', '--no-wait')
    assert 'being trained by' in held.stdout, held.stdout
    assert not submitted(held.stdout)
    collect = run_slurm_grid(grid, '--only', 'seed=0')
    assert collect.returncode == 0, collect.stdout + collect.stderr
    [launch] = launches(seed0)
    assert launch['note'] == f'in Slurm job {job}'
    assert not osp.exists(osp.join(seed1, 'slurm_job.json'))


# Slurm checks time limits every 30 s: with a 2-minute limit and the signal
# 60 s before it, USR2 comes 60-90 s into the job, after the training child
# has started (about 15-50 s here). 40 iterations, each of the first
# attempt followed by a 2.5 s sleep (tests/e2e/paced_first_attempt.py), are
# still training then (~120 s) at the CPU cost of 40 iterations; the
# requeued job gets a longer limit to finish in one more attempt.
TIME_LIMIT = ['--time-min', '2', '--signal-delay-s', '60']
PACED_ITERS = 40
PACE_S = 2.5
LONG_RUN = {'default_hooks.checkpoint.interval': 1000,
            'default_hooks.logger.interval': 1}
ITER_LINE = re.compile(r'Iter\(train\) \[\s*(\d+)/(\d+)\]')


def _paced_run_overrides() -> dict:
    from mmengine.config import Config
    runtime = Config.fromfile(osp.join(PROJECT_ROOT, 'configs', '_base_',
                                       'plugins_runtime.py'))
    return {**LONG_RUN,
            'custom_imports.imports': [*runtime.custom_imports['imports'],
                                       'paced_first_attempt'],
            'custom_hooks': [*runtime.to_dict()['custom_hooks'],
                             dict(type='PacedFirstAttemptHook',
                                  seconds=PACE_S)]}


def _env_with_paced_hook() -> dict:
    here = osp.dirname(osp.abspath(__file__))
    path = os.environ.get('PYTHONPATH')
    return {**os.environ,
            'PYTHONPATH': here + (os.pathsep + path if path else '')}


def test_a_time_limit_checkpoints_the_iteration_and_requeues_to_the_end(
        slurm, tiny_builtin, tmp_path):
    """Issue 35, item 4: the time limit's USR2 saves a checkpoint at the
    iteration it interrupts; the requeued job resumes there, trains every
    iteration once (the run's log shows each one once) and ends with the
    uninterrupted run's weights and AP."""
    iters = PACED_ITERS
    models = {'m': TINY_MASK_RCNN}
    grid = grid_file(tmp_path, 'limit', tiny_builtin, models, max_iters=iters,
                     overrides=_paced_run_overrides())
    # Unpaced: the sleeps change no number, and the test does not wait for
    # them twice.
    reference = grid_file(tmp_path, 'reference', tiny_builtin, models,
                          max_iters=iters, overrides=LONG_RUN)
    env = _env_with_paced_hook()
    # The uninterrupted run, meanwhile, on 1 thread as the job's 1 CPU.
    local = subprocess.Popen(
        [sys.executable, 'experiments/run_grid.py', reference, '--slots',
         '2', '--tick', '1'], cwd=PROJECT_ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, env=env)
    runner = subprocess.Popen(
        [sys.executable, 'experiments/run_grid.py', grid, *SLURM_ARGS[:-4],
         *TIME_LIMIT, '--tick', '1'], cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    work_dir = str(tmp_path / 'limit')
    pending_since = {}
    try:
        deadline = time.monotonic() + 900
        while runner.poll() is None:
            assert time.monotonic() < deadline, 'the grid never finished'
            logs = glob.glob(osp.join(work_dir, '*', 'run.log'))
            stopped = logs and 'stopped after iteration' in open(
                logs[0]).read()
            requeued = logs and any(r['event'] == 'end' for r in
                                    read_attempts(osp.dirname(logs[0])))
            for job, (state,) in squeue(slurm).items():
                if state != 'PENDING' or not requeued:
                    pending_since.pop(job, None)
                    continue
                since = pending_since.setdefault(job, time.monotonic())
                if time.monotonic() - since >= REQUEUE_HOLD_S:
                    # Slurm holds a requeued job about two minutes. Once a
                    # stop has been seen (not a signal during the build),
                    # the job may finish.
                    slurm.run(['scontrol', 'update', f'JobId={job}',
                               'StartTime=now'] +
                              (['TimeLimit=30'] if stopped else []),
                              timeout=30)
            time.sleep(1)
        out = runner.communicate()[0]
        local_out = local.communicate(timeout=900)[0]
    finally:
        runner.kill()
        local.kill()
    assert runner.returncode == 0, out
    assert local.returncode == 0, local_out
    [row] = read_results_csv(osp.join(work_dir, 'results.csv')).itertuples()
    [ref] = read_results_csv(str(tmp_path / 'reference' / 'results.csv')
                             ).itertuples()
    assert row.status == 'finished' and row.iterations == iters
    assert row.attempts >= 2 and 'requeued' in row.signals, row.signals
    log = open(osp.join(row.work_dir, 'run.log')).read()
    [(signame, stop)] = re.findall(
        r'(SIG\w+): stopped after iteration (\d+)', log)
    trained = [int(i) for i, _ in ITER_LINE.findall(log)]
    print(f'{row.attempts} attempts; {signame} stopped one after iteration '
          f'{stop}; iterations logged: {len(trained)} for {iters}')
    assert 0 < int(stop) < iters
    # Each iteration trained once: the next attempt starts at the stop.
    assert trained == list(range(1, iters + 1)), trained
    starts = [r['iter'] for r in read_attempts(row.work_dir)
              if r['event'] == 'start']
    assert starts[-1] == int(stop) and set(starts) == {0, int(stop)}, \
        starts
    assert row.resume_exact == 'yes', row.resume_exact
    weights = [torch.load(osp.join(d, f'iter_{iters}.pth'),
                          map_location='cpu',
                          weights_only=False)['state_dict']
               for d in (row.work_dir, ref.work_dir)]
    assert all(torch.equal(weights[0][k], weights[1][k])
               for k in weights[0])
    for column in ('box_AP', 'mask_AP', 'box_AP50', 'mask_AP50'):
        assert getattr(row, column) == getattr(ref, column)
