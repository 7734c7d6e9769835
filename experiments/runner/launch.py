"""Start one planned grid run as a child process on given slots.

:func:`make_job` turns a :class:`PlannedRun` into a scheduler
:class:`~experiments.runner.scheduler.Job`. Starting it takes the run's lock
first
(another runner may hold it: the job is then retried later), re-reads the
run's status under the lock (another runner may have finished it), writes
the run's ``config.py``/``run.json`` and launches
``experiments/runner/train_run.py``
-- through ``torchrun`` when the run needs several GPUs. The child inherits
the lock, so it stays taken until both the child has exited and this process
has recorded the outcome.
"""
import dataclasses
import os
import os.path as osp
import re
import signal
import subprocess
import sys
import time
from typing import Callable, List, Optional

from experiments.data.prepare import PreparedDataset
from experiments.grid.batch_recipe import RunRecipe
from experiments.grid.run_config import weights_source
from experiments.grid.spec import GridSpec, RunSpec
from experiments.runner.child import EXIT_LOCKED, die_with_parent
from experiments.runner.lock import LOCK_FD_ENV, RunLock
from experiments.runner.progress import (
    ATTEMPT_ID_ENV,
    AttemptRecorder,
    attempt_signals,
    close_attempt,
    new_attempt_id,
    signal_kills_in_a_row,
)
from experiments.runner.rank_launch import clear_rank_errors
from experiments.runner.scheduler import AGAIN, Job, StartResult
from experiments.store import (
    FAILED,
    FINISHED,
    PROJECT_ROOT,
    RUN_META,
    DamagedFileError,
    append_attempt,
    atomic_write_json,
    read_attempts,
    read_json,
    read_run_meta,
    run_status,
    set_aside,
)

LOG_TAIL_LINES = 20
CPU_SLOT_PREFIX = 'cpu'
# A child killed by a signal (the OOM killer, a user's kill) is started
# again from its last checkpoint this many times before the run fails.
SIGNAL_RETRIES = 2


@dataclasses.dataclass
class PlannedRun:
    """A grid run resolved and checked: what a launch needs."""

    run: RunSpec
    run_id: str
    run_dir: str
    cfg: object
    dataset: PreparedDataset
    recipe: RunRecipe

    @property
    def processes(self) -> int:
        """Training processes (one per GPU or CPU slot)."""
        return self.recipe.placement.processes


def run_meta(planned: PlannedRun, grid: GridSpec) -> dict:
    """What ``run.json`` says about a run (and every row starts from)."""
    run, dataset = planned.run, planned.dataset
    return dict(run_id=planned.run_id, grid=grid.name, model=run.model,
                arm=run.arm, dataset=run.dataset, seed=run.seed,
                config=run.config, arm_description=run.description,
                overrides=run.overrides, cfg_options=run.cfg_options,
                weights=weights_source(planned.cfg), tracker=grid.tracker,
                train_ann=osp.join(dataset.data_root, dataset.train_ann),
                train_img=osp.join(dataset.data_root, dataset.train_img),
                val_ann=osp.join(dataset.data_root, dataset.val_ann),
                val_img=osp.join(dataset.data_root, dataset.val_img),
                val_images=dataset.val_images,
                val_instances=dataset.val_instances, **planned.recipe.row())


def prepare_run_dir(planned: PlannedRun, grid: GridSpec) -> dict:
    """Write the run's config and metadata.

    Call with the run's lock held.
    """
    run_dir = planned.run_dir
    os.makedirs(run_dir, exist_ok=True)
    meta = run_meta(planned, grid)
    planned.cfg.dump(osp.join(run_dir, 'config.py'))
    atomic_write_json(osp.join(run_dir, RUN_META), meta)
    return meta


def log_tail(path: str, lines: int = LOG_TAIL_LINES) -> str:
    if not osp.isfile(path):
        return ''
    with open(path, errors='replace') as f:
        return ''.join(f.readlines()[-lines:])


def exit_status(code: int) -> str:
    """``exited 1`` or ``killed by SIGKILL``."""
    if code < 0:
        return f'killed by {signal.Signals(-code).name}'
    return f'exited {code}'


def failure_message(run_dir: str, code: int) -> str:
    """Why an attempt failed, from its ``error.json`` or its exit status."""
    try:
        error = read_json(osp.join(run_dir, 'error.json'))
    except DamagedFileError:
        error = None
    if error:
        # From rank_launch: the rank whose error started the failure.
        rank = f'rank {error["rank"]} of {error["processes"]}: ' \
            if error.get('processes') else ''
        return (f'{rank}{error["type"]} during {error["phase"]}: '
                f'{error["message"]}')
    if code < 0:
        name = signal.Signals(-code).name
        hint = ' (out of memory, or killed by hand?)' \
            if name == 'SIGKILL' else ''
        return f'child process killed by {name}{hint}'
    # No error.json: the child died writing it (a full disk, say). Its last
    # log line is the exception.
    errors = [line.strip() for line in log_tail(
        osp.join(run_dir, 'run.log'), 40).splitlines()
        if re.match(r'[A-Za-z_.]*(Error|Exception)\b.*:', line)]
    return f'child process exited with status {code}' + (
        f': {errors[-1]}' if errors else '')


def record_failure(run_dir: str, meta: dict, message: str) -> None:
    ends = [r for r in read_attempts(run_dir) if r.get('event') == 'end']
    atomic_write_json(osp.join(run_dir, FAILED), dict(
        meta, status='failed', error=message, work_dir=run_dir,
        attempts=len(ends), signals=attempt_signals(ends),
        log_tail=log_tail(osp.join(run_dir, 'run.log'))))


def child_command(run_dir: str, processes: int) -> List[str]:
    if processes == 1:
        return [sys.executable, '-m', 'experiments.runner.train_run', run_dir]
    return [sys.executable, '-m', 'experiments.runner.rank_launch',
            f'--nproc={processes}', run_dir]


def child_env(slot_ids: List[str], cpu_threads: int) -> dict:
    env = dict(os.environ)
    if slot_ids[0].startswith(CPU_SLOT_PREFIX):
        env['CUDA_VISIBLE_DEVICES'] = ''
        # N concurrent CPU runs would otherwise each start one thread per
        # core and slow each other down.
        env['OMP_NUM_THREADS'] = env['MKL_NUM_THREADS'] = str(cpu_threads)
    else:
        env['CUDA_VISIBLE_DEVICES'] = ','.join(slot_ids)
    return env


class RunAttempt:
    """One attempt at a run: lock, re-check, start the child, record the end.

    Used by the local scheduler (:func:`make_job`) and by the Slurm job
    (``experiments/slurm/job.py``), so both follow the same rules.

    A child killed by a signal while this process lives (the OOM killer, a
    user's ``kill``) is retried: :meth:`end` returns ``AGAIN`` up to
    ``signal_retries`` times in a row, and the next attempt resumes from the
    last checkpoint. A Python exception or a NaN loss fails the run at once.

    Args:
        run_dir: The run's directory.
        retry_failed: Whether a failed run is started again.
        processes: Processes to start (``experiments/runner/rank_launch.py``,
            i.e. ``torchrun``, when more than one).
        prepare: Writes the run dir (called under the lock), or None when it
            was written before (Slurm: at submission).
        signal_retries: Automatic retries after signal kills in a row.
    """

    def __init__(self, run_dir: str, retry_failed: bool, processes: int = 1,
                 prepare: Optional[Callable[[], None]] = None,
                 signal_retries: int = SIGNAL_RETRIES) -> None:
        self.run_dir = run_dir
        self.retry_failed = retry_failed
        self.processes = processes
        self.prepare = prepare
        self.signal_retries = signal_retries
        self.lock = RunLock(run_dir)
        self.attempt_id: Optional[str] = None
        self.started = 0.0
        self.kills_before = 0

    def begin(self, env: dict, note: str = '') -> StartResult:
        """Start the child; see ``StartResult`` for what comes back."""
        if not self.lock.acquire():
            return None
        status = run_status(self.run_dir)
        if status == 'finished' or (status == 'failed'
                                    and not self.retry_failed):
            self.lock.release()
            return status
        try:
            if self.prepare is not None:
                self.prepare()
            if status == 'damaged':
                kept = set_aside(osp.join(self.run_dir, FINISHED))
                print(f'{self.run_dir}: {FINISHED} was damaged (kept as '
                      f'{osp.basename(kept)}); the run is evaluated again '
                      f'from its last checkpoint', file=sys.stderr)
            for stale in (FAILED, 'error.json'):
                if osp.isfile(osp.join(self.run_dir, stale)):
                    os.remove(osp.join(self.run_dir, stale))
            clear_rank_errors(self.run_dir)
            # An attempt killed with an earlier runner has no end record;
            # its child's successor would write one only once it runs, after
            # this attempt's kills were counted. Closed here, it ends the
            # row of kills: a runner restart is not a kill of the run.
            AttemptRecorder(self.run_dir).close_killed_attempts()
            # --retry-failed starts the count of signal kills again.
            fresh = status == 'failed'
            self.kills_before = 0 if fresh else \
                signal_kills_in_a_row(self.run_dir)
            self.attempt_id = new_attempt_id()
            self.started = time.time()
            # Recorded before the child exists: an attempt killed while it
            # imports or builds (before its first iteration) still counts.
            append_attempt(self.run_dir, dict(
                event='launch', attempt=self.attempt_id,
                time=time.strftime('%Y-%m-%dT%H:%M:%S'),
                time_s=round(self.started, 3), note=note, fresh=fresh,
                retry=self.kills_before))
            with open(osp.join(self.run_dir, 'run.log'), 'a') as log:
                log.write(f'\n===== attempt started {time.ctime()} {note} '
                          f'=====\n')
                log.flush()
                env = dict(env, **{LOCK_FD_ENV: str(self.lock.fd),
                                   ATTEMPT_ID_ENV: self.attempt_id})
                return subprocess.Popen(
                    child_command(self.run_dir, self.processes),
                    cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT,
                    env=env, pass_fds=(self.lock.fd,),
                    start_new_session=True, preexec_fn=die_with_parent)
        except BaseException:
            self.lock.release()
            raise

    def end(self, code: int, stopped_by: str = '') -> Optional[str]:
        """Record how the child ended; release the lock; return the status.

        Args:
            code: The child's exit status (negative: killed by that signal).
            stopped_by: Who stopped the child on purpose, when this process
                knows (``Slurm stopped the job``): a kill that is not the
                run's fault, so it neither fails the run nor counts against
                the retries.

        Returns:
            ``finished``; ``failed``; ``AGAIN`` (killed by a signal: start
            the next attempt now); ``interrupted`` (stopped on purpose: the
            run resumes when it is started again); None (another process
            had the lock).
        """
        try:
            if code == EXIT_LOCKED:
                return None
            killed = signal.Signals(-code).name if code < 0 else ''
            # The child writes its own end record unless it was killed; this
            # one has the exact elapsed time and the signal.
            extra = dict(signal=killed, counts=not stopped_by) \
                if killed else {}
            if stopped_by:
                extra['cause'] = stopped_by
            message = 'finished'
            try:
                if self.attempt_id is not None:
                    close_attempt(self.run_dir, self.attempt_id,
                                  time.time() - self.started,
                                  exit_status(code), **extra)
                if run_status(self.run_dir) == 'finished':
                    return 'finished'
                if stopped_by:
                    # torchrun exits 1 on SIGTERM: any end is the stop's.
                    self._log(f'child process {exit_status(code)}: '
                              f'{stopped_by}; the run resumes from its last '
                              f'checkpoint when it starts again')
                    return 'interrupted'
                if killed and self.kills_before < self.signal_retries:
                    self._log(f'child process killed by {killed}; automatic '
                              f'retry {self.kills_before + 1} of '
                              f'{self.signal_retries} resumes from the last '
                              f'checkpoint')
                    return AGAIN
                message = failure_message(self.run_dir, code)
                if killed:
                    message += (f', on {self.kills_before + 1} attempt(s) '
                                f'in a row (--signal-retries '
                                f'{self.signal_retries})')
                record_failure(self.run_dir, read_run_meta(self.run_dir),
                               message)
            except OSError as e:
                # A full disk or a read-only work dir: the run stays
                # unfinished (it resumes next time) and the runner goes on.
                print(f'error: {self.run_dir}: cannot record that the run '
                      f'failed ({message}): {e.strerror}: '
                      f'{e.filename or self.run_dir}', file=sys.stderr)
            return 'failed'
        finally:
            self.lock.release()

    def _log(self, message: str) -> None:
        """On stderr and in ``run.log``, where the next attempt starts."""
        print(f'{self.run_dir}: {message}', file=sys.stderr)
        with open(osp.join(self.run_dir, 'run.log'), 'a') as log:
            log.write(f'===== {message} =====\n')


def make_job(planned: PlannedRun, grid: GridSpec, retry_failed: bool,
             cpu_threads: int = 1,
             on_finish: Optional[Callable[[PlannedRun, str], None]] = None,
             signal_retries: int = SIGNAL_RETRIES) -> Job:
    """The scheduler job that trains ``planned`` to a final status."""
    attempt = RunAttempt(planned.run_dir, retry_failed, planned.processes,
                         prepare=lambda: prepare_run_dir(planned, grid),
                         signal_retries=signal_retries)

    def start(slot_ids: List[str]) -> StartResult:
        return attempt.begin(child_env(slot_ids, cpu_threads),
                             note=f'on slot(s) {",".join(slot_ids)}')

    def finish(code: int) -> Optional[str]:
        status = attempt.end(code)
        if status not in (None, AGAIN) and on_finish is not None:
            on_finish(planned, status)
        return status

    return Job(name=planned.run.label, start=start, finish=finish,
               slots=planned.processes)
