"""Exact resume: every rank's random state at each checkpoint, restored on
resume, and validation that leaves the training's random streams alone.

mmengine's checkpoints hold the weights and buffers, the optimizer (momentum,
AMP loss scale), the LR schedulers and the message hub, but no random state.
What a resumed run draws afterwards therefore depends on where it was
stopped. What decides the rest of training, and how each part comes back:

- the data order (``InfiniteSampler``: its own seeded generator) and the
  pipeline's numpy / python draws (``RandomFlip``), in the main process with
  ``num_workers=0`` or in workers seeded by mmengine's ``worker_init_fn``:
  ``IterBasedTrainLoop`` re-fetches the ``k`` batches already trained on
  ("Advance dataloader k steps"), which replays them from the seeded start.
  ``ResumableIterBasedTrainLoop`` (``resumable_loop.py``) does not: it
  positions the samplers on indices alone, and this hook puts back every
  random stream (torch, numpy, python) as it was just before batch
  ``k + 1`` was fetched, at ``before_train_epoch`` (``restore_at='fetch'``);
  the state saved after that fetch then checks all three;
- the model's torch draws (mmdet's ``RandomSampler`` in the RPN / RoI heads,
  CenterMask's ``max_pos_per_img`` cap): not replayed by the advance; each
  rank saves its torch (CPU, and CUDA of its device) state at every
  checkpoint to ``<work_dir>/rng_states/iter_<n>.rank<r>.pth`` and restores
  it at the first ``before_train_iter`` after resume. numpy / python are not
  restored there (that would rewind the draws of the batch already fetched);
  they are compared with the saved ones instead, which checks the replay;
- ``EpochBasedTrainLoop`` (checkpoints by epoch) does not replay: torch,
  numpy and python are restored at the first ``before_train_epoch``, before
  the epoch's first batch is fetched (``rng_states/epoch_<e>.rank<r>.pth``);
- with k processes (``broadcast_buffers=False``) each rank's model buffers
  (training BN statistics, the self-adjusting smooth L1's running mean and
  variance, which set that rank's beta): the checkpoint holds rank 0's, so
  every rank saves its own beside its random state and puts them back.

With each state go digests of the rank's model (parameters and buffers) and
optimizer state (``_digests``); after the restore each rank compares its
own with them, so a resume whose ranks did not get back what they saved is
recorded as inexact. What every rank then *tests* is
``SameModelTestHook``'s business (``same_model_test_hook.py``).

Each state is saved twice: at the checkpoint (before ``CheckpointHook``
writes it) and again at the start of the next iteration / epoch, after the
validation and the data fetch in between; the second one is exact whatever
those draw, the first one covers a run stopped during that validation.
Validation runs between ``before_val`` and ``after_val`` with the training's
random state set aside and put back, so how often (and whether) a run
validates never changes its training.

A resume that cannot be exact (no saved state: a checkpoint from before this
hook or from another number of processes; an epoch-based run resumed from an
iteration checkpoint, or with persistent data workers; a replay that did not
reproduce the data's random state) is logged as one warning, and every
resume, exact or not, is appended to ``<work_dir>/resume_exactness.json``.
"""
import glob
import os
import os.path as osp
import re
from typing import List, Optional

import torch
from mmengine.dist import all_gather_object, get_dist_info
from mmengine.hooks import CheckpointHook, Hook
from mmengine.registry import HOOKS
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop

from .random_state import (capture_random_state, model_digest,
                           optimizer_digest, restore_buffers,
                           restore_random_state, same_data_random_state,
                           same_random_state, unwrap_model)
from .resume_report import REPORT_FILE, read_resume_report, record_resume

__all__ = ['RNG_DIR', 'REPORT_FILE', 'RandomStateHook', 'read_resume_report']

RNG_DIR = 'rng_states'
_NAME = re.compile(r'^(iter|epoch)_(\d+)\.rank(\d+)\.pth$')


def _digests(runner) -> dict:
    """What this process continues from besides its random state: its
    model's parameters and buffers and its optimizer's state."""
    return dict(model=model_digest(runner.model),
                optimizer=optimizer_digest(runner.optim_wrapper))


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Save each rank's random state with every checkpoint; restore it on
    resume so the resumed run continues the uninterrupted one exactly.

    Priority ``LOW``: at ``after_train_iter`` / ``after_train_epoch`` the
    state is written before ``CheckpointHook`` (``VERY_LOW``) writes the
    checkpoint, so a checkpoint never exists without its random state unless
    a rank died in between.
    """

    priority = 'LOW'

    def __init__(self) -> None:
        self._checkpoint: Optional[CheckpointHook] = None
        self._pending_save = None      # (kind, step, state before fetch)
        self._restore = None           # dict(kind, step, state) or None
        self._resumed = None           # dict(kind, step, reasons)
        self._val_state = None

    # -- where things are ---------------------------------------------
    def _dir(self, runner) -> str:
        return osp.join(runner.work_dir, RNG_DIR)

    def _path(self, runner, kind: str, step: int) -> str:
        rank, _ = get_dist_info()
        return osp.join(self._dir(runner), f'{kind}_{step}.rank{rank}.pth')

    def _own_files(self, runner, kind: str) -> List[tuple]:
        rank, _ = get_dist_info()
        found = []
        for path in glob.glob(osp.join(self._dir(runner), f'{kind}_*.pth')):
            m = _NAME.match(osp.basename(path))
            if m and int(m.group(3)) == rank:
                found.append((int(m.group(2)), path))
        return sorted(found)

    # -- saving ---------------------------------------------------------
    def _save(self, runner, kind: str, step: int, phase: str,
              fetch_state: Optional[dict] = None) -> dict:
        """Write this rank's state file; return the random state saved.

        ``fetch_state``: at ``phase='start'``, the state saved at the
        checkpoint, i.e. before this step's batch was fetched (what a loop
        that positions its data instead of replaying it restores).
        """
        rank, world_size = get_dist_info()
        os.makedirs(self._dir(runner), exist_ok=True)
        path = self._path(runner, kind, step)
        state = capture_random_state()
        payload = dict(kind=kind, step=step, phase=phase, rank=rank,
                       world_size=world_size, iter=runner.iter,
                       epoch=runner.epoch, state=state,
                       digests=_digests(runner))
        if fetch_state is not None:
            payload['fetch_state'] = fetch_state
        if world_size > 1:
            # broadcast_buffers=False: BN statistics and the self-adjusting
            # smooth L1's running mean / variance are per process, and the
            # checkpoint holds rank 0's only.
            payload['buffers'] = {
                name: buf.detach().cpu().clone()
                for name, buf in unwrap_model(runner.model).named_buffers()}
        tmp = f'{path}.tmp'
        torch.save(payload, tmp)
        os.replace(tmp, path)   # a kill mid-write leaves the old file whole
        return state

    def _prune(self, runner, kind: str, newest: int) -> None:
        """Keep as many as the checkpoint hook keeps (all if it keeps all);
        states of steps past ``newest`` belong to an abandoned attempt."""
        keep = self._checkpoint.max_keep_ckpts if self._checkpoint else -1
        files = self._own_files(runner, kind)
        old = [p for s, p in files if s <= newest]
        doomed = [p for s, p in files if s > newest]
        if keep > 0:
            doomed += old[:-keep]
        for path in doomed:
            try:
                os.remove(path)
            except FileNotFoundError:
                pass

    def _checkpoint_due(self, runner, kind: str) -> bool:
        """CheckpointHook's own decision (its ``after_train_iter`` /
        ``after_train_epoch``), evaluated at the same moment."""
        ckpt = self._checkpoint
        if ckpt is None or ckpt.by_epoch != (kind == 'epoch'):
            return False
        if kind == 'epoch':
            return ckpt.every_n_epochs(runner, ckpt.interval,
                                       ckpt.save_begin) or (
                ckpt.save_last and ckpt.is_last_train_epoch(runner))
        return ckpt.every_n_train_iters(runner, ckpt.interval,
                                        ckpt.save_begin) or (
            ckpt.save_last and ckpt.is_last_train_iter(runner))

    # -- hooks ------------------------------------------------------------
    def before_train(self, runner) -> None:
        hooks = [h for h in runner.hooks if isinstance(h, CheckpointHook)]
        self._checkpoint = hooks[0] if hooks else None
        self._pending_save = None
        self._restore = None
        self._resumed = None
        if runner.iter > 0 or runner.epoch > 0:
            self._plan_restore(runner)

    def _plan_restore(self, runner) -> None:
        loop = runner.train_loop
        by_epoch = (self._checkpoint.by_epoch if self._checkpoint is not None
                    else isinstance(loop, EpochBasedTrainLoop))
        kind = 'epoch' if by_epoch else 'iter'
        step = runner.epoch if by_epoch else runner.iter
        reasons = []
        self._resumed = dict(kind=kind, step=step, iter=runner.iter,
                             epoch=runner.epoch, reasons=reasons)
        rank, world_size = get_dist_info()
        if isinstance(loop, IterBasedTrainLoop) and not by_epoch:
            restore_at = 'iter'   # 'fetch' below if the loop positions
        elif isinstance(loop, EpochBasedTrainLoop) and by_epoch:
            restore_at = 'epoch'
            loader = loop.dataloader
            if loader.num_workers > 0 and loader.persistent_workers:
                reasons.append(
                    'persistent data workers: their random state after '
                    f'epoch {step} is not saved and fresh workers start '
                    'from their seed (persistent_workers=False resumes '
                    'exactly)')
        elif isinstance(loop, EpochBasedTrainLoop):
            restore_at = None
            reasons.append(
                f'an epoch-based loop resumed from iteration {runner.iter} '
                f'(epoch {runner.epoch}): mmengine restarts the epoch\'s '
                'data from its first batch')
        else:
            restore_at = None
            reasons.append(f'{type(loop).__name__} is not a loop whose '
                           'resume this hook knows how to make exact')
        accumulation = getattr(runner.optim_wrapper, '_accumulative_counts',
                               1)
        if accumulation > 1 and runner.iter % accumulation:
            reasons.append(
                f'resumed at iteration {runner.iter}, inside an accumulation '
                f'of {accumulation} micro-batches: their gradients are lost')
        if restore_at is not None:
            path = self._path(runner, kind, step)
            saved = None
            if osp.isfile(path):
                try:
                    saved = torch.load(path, map_location='cpu',
                                       weights_only=True)
                except Exception as e:  # noqa: BLE001 -- a damaged file
                    reasons.append(f'{osp.relpath(path, runner.work_dir)} '
                                   f'does not read back: '
                                   f'{type(e).__name__}: {e}')
                    path = None
            if path is None:
                pass
            elif saved is None:
                reasons.append(
                    f'no random state saved for {kind} {step} on rank '
                    f'{rank} ({osp.relpath(path, runner.work_dir)} missing: '
                    'a checkpoint written before RandomStateHook, or a rank '
                    'stopped between its state and the checkpoint)')
            elif saved['world_size'] != world_size:
                reasons.append(
                    f'the random state of {kind} {step} was saved by '
                    f'{saved["world_size"]} processes, resumed with '
                    f'{world_size}')
            else:
                fetch_state = saved['state'] if saved['phase'] == \
                    'checkpoint' else saved.get('fetch_state')
                if restore_at == 'iter' and fetch_state is not None and \
                        hasattr(loop, 'position_on_resume') and \
                        loop.position_on_resume():
                    restore_at = 'fetch'
                self._restore = dict(at=restore_at, kind=kind, step=step,
                                     saved=saved, fetch_state=fetch_state)
        self._resumed['restore_at'] = 'iter' if restore_at == 'fetch' else (
            restore_at or ('epoch' if by_epoch else 'iter'))
        # States of later steps are an abandoned attempt's.
        self._prune(runner, kind, step)

    def _finish_resume(self, runner) -> None:
        """At the restore point: restore, check, gather every rank's
        verdict, warn once and append it to ``resume_exactness.json``."""
        resumed, self._resumed = self._resumed, None
        restore, self._restore = self._restore, None
        reasons = resumed['reasons']
        data_checked = False
        if restore is not None:
            saved = restore['saved']
            if restore['at'] == 'fetch':
                # Restored before the fetch (before_train_epoch); after it,
                # every stream must be where the uninterrupted run's was.
                if saved['phase'] == 'start':
                    data_checked = True
                    if not same_random_state(saved['state']):
                        reasons.append(
                            'the random state after fetching batch '
                            f'{resumed["step"] + 1} differs from the '
                            'uninterrupted run\'s (the data was not '
                            'positioned where it was, or its draws differ)')
            elif restore['at'] == 'iter':
                # numpy / python drew the already-fetched batch: not
                # restored; equal to the saved state if the replay was exact.
                if saved['phase'] == 'start':
                    data_checked = True
                    if not same_data_random_state(saved['state']):
                        reasons.append(
                            'the data pipeline\'s numpy/python random state '
                            f'after replaying {resumed["step"]} batches '
                            'differs from the uninterrupted run\'s (its '
                            'augmentation draws did not replay)')
                restore_random_state(saved['state'], data=False)
            else:
                restore_random_state(saved['state'], data=True)
                data_checked = True
            if 'buffers' in saved:
                missing = restore_buffers(runner.model, saved['buffers'])
                if missing:
                    reasons.append(
                        f'{len(missing)} of this process\'s model buffers '
                        f'were not saved with its random state (e.g. '
                        f'{missing[0]}); they are rank 0\'s')
            for what, digest in _digests(runner).items():
                if saved.get('digests', {}).get(what) not in (None, digest):
                    reasons.append(
                        f'this process\'s {what} state after the resume is '
                        f'not the one it saved at {resumed["kind"]} '
                        f'{resumed["step"]}')
        rank, _ = get_dist_info()
        verdicts = all_gather_object(dict(rank=rank, reasons=reasons,
                                          data_checked=data_checked))
        if rank == 0:
            record_resume(runner, resumed, verdicts)

    def before_train_epoch(self, runner) -> None:
        if self._restore is not None and self._restore['at'] == 'fetch':
            # The loop positions its data after this hook and fetches the
            # next batch with these streams.
            restore_random_state(self._restore['fetch_state'], data=True)
        if self._resumed is not None and self._resumed['restore_at'] == \
                'epoch':
            self._finish_resume(runner)
        if self._pending_save and self._pending_save[0] == 'epoch':
            if self._pending_save[1] == runner.epoch:
                self._save(runner, 'epoch', runner.epoch, 'start')
            self._pending_save = None

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        if self._resumed is not None and self._resumed['restore_at'] == \
                'iter':
            self._finish_resume(runner)
        if self._pending_save and self._pending_save[0] == 'iter':
            if self._pending_save[1] == runner.iter:
                self._save(runner, 'iter', runner.iter, 'start',
                           fetch_state=self._pending_save[2])
            self._pending_save = None

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        if self._checkpoint_due(runner, 'iter'):
            self.save_iteration_state(runner)

    def save_iteration_state(self, runner) -> None:
        """Save this rank's state for a checkpoint of the iteration that
        just ended (``CheckpointHook``'s, or ``StopCheckpointHook``'s on a
        signal); call before the checkpoint is written."""
        step = runner.iter + 1
        state = self._save(runner, 'iter', step, 'checkpoint')
        self._prune(runner, 'iter', step)
        self._pending_save = ('iter', step, state)

    def after_train_epoch(self, runner) -> None:
        if self._checkpoint_due(runner, 'epoch'):
            step = runner.epoch + 1
            state = self._save(runner, 'epoch', step, 'checkpoint')
            self._prune(runner, 'epoch', step)
            self._pending_save = ('epoch', step, state)

    def after_train(self, runner) -> None:
        # A resume whose restore point never came (nothing left to train).
        if self._resumed is not None:
            self._finish_resume(runner)

    # -- validation leaves the training's random streams alone -----------
    def before_val(self, runner) -> None:
        self._val_state = capture_random_state()

    def after_val(self, runner) -> None:
        if self._val_state is not None:
            restore_random_state(self._val_state, data=True)
            self._val_state = None
