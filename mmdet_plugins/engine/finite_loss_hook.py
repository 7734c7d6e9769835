"""Stop training with a clear error when the loss stops being finite."""
import math
from typing import Optional

from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class FiniteLossHook(Hook):
    """Raise ``FloatingPointError`` naming the iteration and the bad terms.

    mmdet's ``CheckInvalidLossHook`` raises a bare ``AssertionError`` (its
    message is the ``None`` returned by ``logger.info``). A harness that
    records why a run failed needs the iteration and which loss term went
    non-finite, so this hook reports both.

    Args:
        interval: Check every ``interval`` iterations. A check is one
            ``isfinite`` on scalars already computed for logging.
    """

    # Before CheckpointHook (VERY_LOW): a non-finite model is never saved
    # over the last good checkpoint that a resume would start from.
    priority = 'NORMAL'

    def __init__(self, interval: int = 1) -> None:
        self.interval = interval

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        if not outputs or not self.every_n_train_iters(runner, self.interval):
            return
        values = {k: float(v) for k, v in outputs.items()
                  if k.startswith('loss') or k == 'loss'}
        if all(math.isfinite(v) for v in values.values()):
            return
        bad = ', '.join(f'{k}={v}' for k, v in values.items()
                        if not math.isfinite(v))
        raise FloatingPointError(
            f'non-finite loss at iteration {runner.iter + 1}: {bad}')
