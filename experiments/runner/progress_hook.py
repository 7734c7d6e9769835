"""The training hook that keeps an attempt's ``progress.json`` current.

Kept apart from :mod:`experiments.runner.progress` so that the grid runner,
which reads progress but never trains, imports mmengine's hooks (and torch
with them) only when its planning needs them: ``run_grid.py --help`` takes
about 1 s instead of 4 s.
"""
import time

from mmengine.hooks import Hook

from experiments.runner.progress import AttemptRecorder


class RunProgressHook(Hook):
    """Records the attempt's start iteration and its progress while training.

    Args:
        recorder: The attempt's recorder.
        interval_s: Rewrite ``progress.json`` at most this often.
    """

    priority = 'VERY_LOW'

    def __init__(self, recorder: AttemptRecorder,
                 interval_s: float = 10.0) -> None:
        self.recorder = recorder
        self.interval_s = interval_s
        self._last = 0.0

    def before_train(self, runner) -> None:
        # After the runner loaded a checkpoint: runner.iter is where it
        # resumed.
        self.recorder.start(runner.iter)
        self.recorder.progress(runner.iter, runner.max_iters)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        # A kill after this point resumes from this checkpoint: progress must
        # not lag behind it (one attempt was "killed at 51" and resumed from
        # 75).
        self._last = time.time()
        self.recorder.progress(
            checkpoint.get('meta', {}).get('iter', runner.iter),
            runner.max_iters)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        if time.time() - self._last >= self.interval_s:
            self._last = time.time()
            self.recorder.progress(runner.iter + 1, runner.max_iters)
