"""Every rank's losses and images, per iteration, in a JSON-lines file."""
import json
import os
import os.path as osp
from typing import Optional

from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class RankLossLogHook(Hook):
    """Write ``<work_dir>/rank_losses/rank<r>.jsonl``: per iteration, the
    ids of the images this rank trained on and its loss terms.

    mmengine logs rank 0's losses only. What a k-process run optimises is
    the mean over ranks of each rank's loss; this record lets a test (or a
    user checking a placement) compare it with one process on the same
    images, term by term
    (``tests/e2e/test_distributed_parity.py``).

    Args:
        interval: Record every ``interval`` iterations.
    """

    priority = 'LOW'

    def __init__(self, interval: int = 1) -> None:
        self.interval = interval

    def after_train_iter(self, runner, batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        if not self.every_n_train_iters(runner, self.interval):
            return
        samples = (data_batch or {}).get('data_samples') or []
        record = dict(
            iter=runner.iter, rank=get_rank(),
            img_ids=[int(s.metainfo.get('img_id', -1)) for s in samples],
            losses={k: float(v) for k, v in (outputs or {}).items()})
        folder = osp.join(runner.work_dir, 'rank_losses')
        os.makedirs(folder, exist_ok=True)
        with open(osp.join(folder, f'rank{get_rank()}.jsonl'), 'a') as f:
            f.write(json.dumps(record) + '\n')
