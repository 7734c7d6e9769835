"""LR schedulers counted in optimizer steps under gradient accumulation."""
from typing import Optional

from mmengine.hooks import ParamSchedulerHook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class AccumulatedParamSchedulerHook(ParamSchedulerHook):
    """Step iteration-based LR schedulers once per optimizer step.

    With ``accumulative_counts = a`` every mmengine iteration is one
    micro-batch and the optimizer steps every ``a`` of them. mmengine's
    ``ParamSchedulerHook`` steps the schedulers every iteration, so a
    warm-up of 1000 steps would end after 1000 / a optimizer steps. Here
    they step after the last micro-batch of each optimizer step: the LR of
    optimizer step ``s`` is the recipe's LR of step ``s`` exactly, whatever
    the accumulation (``experiments/grid/batch_recipe.py`` places a run's total
    batch and sets this hook).

    Args:
        accumulative_counts: Micro-batches per optimizer step (the optim
            wrapper's ``accumulative_counts``).
    """

    def __init__(self, accumulative_counts: int = 1) -> None:
        if accumulative_counts < 1:
            raise ValueError(f'accumulative_counts must be >= 1, got '
                             f'{accumulative_counts}')
        self.accumulative_counts = accumulative_counts

    def after_train_iter(self, runner, batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        if (runner.iter + 1) % self.accumulative_counts:
            return
        super().after_train_iter(runner, batch_idx, data_batch, outputs)
