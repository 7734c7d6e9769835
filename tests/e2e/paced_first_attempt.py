"""A hook that stretches a run's first attempt in wall-clock time, not CPU.

The Slurm time-limit test needs a run still training when Slurm's USR2
comes, 60-90 s after the job starts (a limit of whole minutes, checked
every 30 s). Training 200 tiny iterations to last that long kept a core
busy for the whole test, and the uninterrupted reference beside it a
second one. Sleeping after each iteration of the first attempt keeps the
run in training as long at a fifth of the iterations; a resumed attempt
(the requeued job) runs at full speed. Sleeping changes no number the
test compares: no random state, weight or data order.

Imported by the runs through ``custom_imports`` (``PYTHONPATH`` holds this
folder).
"""
import time

from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class PacedFirstAttemptHook(Hook):
    """Sleep ``seconds`` after each training iteration of an attempt that
    started at iteration 0.

    Args:
        seconds: Sleep after each iteration.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.paced = False

    def before_train(self, runner) -> None:
        self.paced = runner.iter == 0

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        if self.paced:
            time.sleep(self.seconds)
