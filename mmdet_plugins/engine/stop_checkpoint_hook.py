"""A stop (SIGTERM, Slurm's time-limit / preemption USR2) saves a
checkpoint at the iteration it interrupts, then ends the process.

Without it a stopped run resumes from its last interval checkpoint and
trains every iteration since then again (up to ``interval - 1`` of them).
With it, during training:

- SIGTERM and SIGUSR2 only set a flag; the iteration in progress finishes
  (forward, backward, optimizer step);
- with k processes the flag is all-reduced (max) after every iteration, so
  every rank stops after the same one, whichever ranks got the signal;
- under gradient accumulation the stop waits for the iteration that steps
  the optimizer: a checkpoint inside an accumulation would lose the
  micro-batches' gradients (at most ``accumulation - 1`` more iterations);
- each rank saves its random state (``RandomStateHook``), rank 0 the
  checkpoint through ``CheckpointHook`` (``iter_<n>.pth``,
  ``last_checkpoint``), unless that hook has just saved this iteration;
- after a barrier every process dies of the signal it got (SIGTERM where
  it got none), so whoever stopped it sees the usual signal death: the
  runner and the Slurm job record the stop as before, and the next attempt
  resumes from this checkpoint exactly.

A signal after the last iteration's check (during its validation) ends
the process at ``after_train``: the last checkpoint is then
``CheckpointHook``'s own. Outside training (building, the final
evaluation) the signals keep their default action.

Data workers: Slurm signals every process of the job step and the runner
the child's process group. A worker that died of it mid-batch would leave
the main process reading half a batch forever, or torch's SIGCHLD handler
would raise in the middle of the iteration. The training loader's workers
(``ResumableIterBasedTrainLoop``) therefore ignore both signals
(:class:`WorkersLeaveStopsToTheMain`) and die with the main process
(``PR_SET_PDEATHSIG``); the loop shuts them down at exit before
``multiprocessing`` would terminate them.
"""
import ctypes
import os
import signal
import sys
from typing import Optional

import torch
from mmengine.dist import all_reduce, barrier, get_dist_info
from mmengine.hooks import CheckpointHook, Hook
from mmengine.registry import HOOKS

from .random_state_hook import RandomStateHook

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR2)


class WorkersLeaveStopsToTheMain:
    """A data loader's ``worker_init_fn``: the worker ignores the stop
    signals (the main process stops, then its workers end) and is killed
    by the kernel when the main process dies, however it dies.

    Args:
        init_fn (callable, optional): The loader's own ``worker_init_fn``
            (mmengine's seeding), called after.
    """

    def __init__(self, init_fn=None) -> None:
        self.init_fn = init_fn

    def __call__(self, worker_id: int) -> None:
        try:
            pr_set_pdeathsig = 1
            ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGKILL)
        except (OSError, AttributeError):   # not Linux
            pass
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)
        if self.init_fn is not None:
            self.init_fn(worker_id)


@HOOKS.register_module()
class StopCheckpointHook(Hook):
    """Checkpoint at the current iteration on SIGTERM / SIGUSR2, then stop.

    Priority ``LOWEST``: it runs after ``CheckpointHook`` at
    ``after_train_iter``, so an iteration that hook saved is not saved
    twice.
    """

    priority = 'LOWEST'

    def __init__(self) -> None:
        self._signal: Optional[int] = None
        self._previous = {}

    def _on_signal(self, signum, frame) -> None:
        if self._signal is None:
            self._signal = signum

    def before_train(self, runner) -> None:
        self._signal = None
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._on_signal)

    def after_train(self, runner) -> None:
        # A signal after the last iteration's check (its validation): the
        # last checkpoint is CheckpointHook's (save_last); stop as asked.
        if self._signal is not None:
            runner.logger.warning(
                f'{signal.Signals(self._signal).name}: stopped after the '
                f'last iteration ({runner.iter}), before what follows it')
            self._die_of_the_signal()
        self._restore_handlers()

    def _restore_handlers(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _stop_agreed(self) -> bool:
        """Whether any rank got a signal (every rank gets the same
        answer after the same iteration)."""
        _, world_size = get_dist_info()
        if world_size == 1:
            return self._signal is not None
        flag = torch.tensor([0 if self._signal is None else 1])
        all_reduce(flag, op='max')
        return bool(flag.item())

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        accumulation = getattr(runner.optim_wrapper, '_accumulative_counts',
                               1)
        if (runner.iter + 1) % accumulation:
            return   # not an optimizer step: no checkpoint can be exact
        if not self._stop_agreed():
            return
        self._signal = self._signal or signal.SIGTERM   # another rank's
        step = runner.iter + 1
        ckpts = [h for h in runner.hooks if isinstance(h, CheckpointHook)]
        states = [h for h in runner.hooks if isinstance(h, RandomStateHook)]
        ckpt = ckpts[0] if ckpts else None
        name = ckpt.filename_tmpl.format(step) if ckpt else None
        saved = ckpt is not None and not ckpt.by_epoch and \
            os.path.basename(ckpt.last_ckpt or '') == name
        if ckpt is not None and not ckpt.by_epoch and not saved:
            # The random state first: a checkpoint never exists without it.
            for hook in states:
                hook.save_iteration_state(runner)
            ckpt._save_checkpoint(runner)
        signum = self._signal
        runner.logger.warning(
            f'{signal.Signals(signum).name}: stopped after iteration {step}'
            f' with its checkpoint ({name}); the next attempt resumes '
            'from it')
        barrier()
        self._die_of_the_signal()

    def _die_of_the_signal(self) -> None:
        """End the process as the signal would have (SIGTERM where this
        rank got none)."""
        signum = self._signal = self._signal or signal.SIGTERM
        self._restore_handlers()
        sys.stdout.flush()
        sys.stderr.flush()
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        # The default action ends the process; nothing below runs.
