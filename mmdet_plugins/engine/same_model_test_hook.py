"""Every rank tests the model that training ended with on rank 0 -- the one
the last checkpoint saves -- whether the run was resumed or not (issue 39).

mmengine's ``Runner.test()`` calls ``load_or_resume()`` again; it does
nothing once a checkpoint was loaded. So with ``resume=True``:

- an uninterrupted run (no checkpoint when training started) reloaded the
  newest checkpoint on every rank before testing. Only rank 0 writes
  checkpoints, and the other ranks do not wait for it: rank 1 read
  ``last_checkpoint`` while rank 0 was still writing the final checkpoint
  and tested the one before (iteration 4 of 6, 20 of 30), rank 0 the final
  one;
- a resumed run had loaded a checkpoint already and reloaded nothing: rank
  1 tested the final weights with its own buffers (``broadcast_buffers=
  False``: BN running statistics, the self-adjusting smooth L1's mean and
  variance), not rank 0's, which the checkpoint holds.

Both rows then differed on the images rank 1 evaluates, from bit-equal
final weights. :class:`SameModelTestHook` makes the two paths one:

- ``after_train``: ``test()`` evaluates the model just trained, never a
  checkpoint re-read from disk;
- ``before_test``: rank 0's parameters and buffers are broadcast to every
  rank; then each rank's digest of what it tests is gathered into
  ``digests`` (one per rank) and rank 0 compares its own with its newest
  checkpoint's, when that checkpoint is of the tested iteration
  (``checkpoint_digest``). A resumed run's ``resume_exact`` says yes only
  when all of these agree (``experiments/runner/resume_row.py``).
"""
import os.path as osp
from typing import List, Optional

import torch
from mmengine.dist import all_gather_object, broadcast, get_dist_info
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner import find_latest_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader

from .random_state import model_digest, state_digest, unwrap_model
from .trusted_checkpoint import trust_checkpoints_under


def share_rank0_model(model) -> None:
    """Copy rank 0's parameters and buffers into every rank's ``model``."""
    _, world_size = get_dist_info()
    if world_size == 1:
        return
    module = unwrap_model(model)
    with torch.no_grad():
        for tensor in list(module.parameters()) + list(module.buffers()):
            broadcast(tensor.data, src=0)


def checkpoint_model_digest(work_dir: str, iteration: int) -> Optional[str]:
    """Digest of the model state in ``work_dir``'s newest checkpoint, if it
    is the checkpoint of ``iteration``; else None."""
    path = find_latest_checkpoint(work_dir)
    if not path or not osp.isfile(path):
        return None
    with trust_checkpoints_under(work_dir):
        checkpoint = CheckpointLoader.load_checkpoint(path,
                                                      map_location='cpu')
    if (checkpoint.get('meta') or {}).get('iter') != iteration:
        return None
    return state_digest(checkpoint['state_dict'])


def evaluated_state_problems(digests: Optional[List[str]],
                          checkpoint_digest: Optional[str]) -> List[str]:
    """Why the ranks' tested model may not be the saved one ([] if it is).

    Args:
        digests: Each rank's digest of the model it tested (rank order),
            None when they were not recorded.
        checkpoint_digest: The digest of the checkpoint of the tested
            iteration, None when there is none.
    """
    if not digests:
        return ['the model state each rank tested was not recorded']
    problems = [f'rank {r} tested other parameters or buffers than rank 0'
                for r, d in enumerate(digests) if d != digests[0]]
    if checkpoint_digest is not None and \
            digests[0].split(':')[0] != checkpoint_digest:
        problems.append('the tested model is not the one its last '
                        'checkpoint saved')
    return problems


@HOOKS.register_module()
class SameModelTestHook(Hook):
    """Test rank 0's trained model on every rank; record what each tested.

    Attributes:
        digests: After ``before_test``, each rank's ``model_digest`` of the
            model it tests (rank order), the persistent state first:
            ``'<state_dict digest>:<all buffers digest>'``.
        checkpoint_digest: On rank 0, the newest checkpoint's state-dict
            digest when it is of the tested iteration, else None.
    """

    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        self.digests: Optional[List[str]] = None
        self.checkpoint_digest: Optional[str] = None

    def after_train(self, runner) -> None:
        # Runner.test() reloads nothing once this is set (mmengine 0.10).
        runner._has_loaded = True

    def before_test(self, runner) -> None:
        share_rank0_model(runner.model)
        module = unwrap_model(runner.model)
        mine = (f'{state_digest(module.state_dict())}:'
                f'{model_digest(module)}')
        self.digests = all_gather_object(mine)
        rank, _ = get_dist_info()
        if rank == 0 and runner.iter > 0:
            self.checkpoint_digest = checkpoint_model_digest(
                runner.work_dir, runner.iter)

    def problems(self) -> List[str]:
        """See :func:`evaluated_state_problems`."""
        return evaluated_state_problems(self.digests, self.checkpoint_digest)
