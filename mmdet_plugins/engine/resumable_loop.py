"""An iteration-based loop that resumes without loading the data it skips.

mmengine's ``IterBasedTrainLoop`` resumes at iteration ``k`` by fetching
the ``k`` batches already trained on ("Advance dataloader"): every image is
read, decoded and augmented again, so a COCO run stopped at 80k iterations
re-loads 80k x (images per process) images before it trains again. What
that replay reproduces is only two things:

- the data order: the sampler (``InfiniteSampler``, or ``DefaultSampler``
  whose epochs ``_InfiniteDataloaderIterator`` restarts) and the batch
  sampler (``AspectRatioBatchSampler`` and its buckets) are functions of the
  seed and of the indices drawn so far. :class:`ResumableBatchSampler`
  replays them on indices alone (a ``get_data_info`` per image, no image
  read, no pipeline) and hands the loader the batch sampler positioned at
  batch ``k``;
- the pipeline's random draws (``RandomFlip``, ``RandomResize``): in the
  main process (``num_workers=0``) they are numpy / python draws, saved by
  :class:`~mmdet_plugins.engine.random_state_hook.RandomStateHook` just
  before batch ``k + 1`` was fetched and put back before it is fetched
  again. In data workers, each batch's draws come from a seed that is a
  function of the run's seed, the rank and the batch's number
  (:class:`SeededBatchesInWorkers`), so a resumed worker draws what the
  uninterrupted one drew.

The loop positions only when a ``RandomStateHook`` has the state to put
back (it calls :meth:`ResumableIterBasedTrainLoop.position_on_resume`);
otherwise it replays like mmengine's loop, which is then the only way to get
the main process's draws back.
"""
import atexit
import logging
import multiprocessing
# Imported now so that its exit handler (SIGTERM to daemonic children, then
# a join without timeout) is registered before this module's, which then
# runs first: atexit runs the last registered first.
import multiprocessing.util  # noqa: F401
import random
import signal
import weakref
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmdet.datasets.samplers import AspectRatioBatchSampler
from mmengine.dist import get_dist_info
from mmengine.logging import print_log
from mmengine.registry import DATA_SAMPLERS, LOOPS
from mmengine.runner import IterBasedTrainLoop
from mmengine.runner.loops import _InfiniteDataloaderIterator
from torch.utils.data import BatchSampler, DataLoader, Sampler

from .stop_checkpoint_hook import WorkersLeaveStopsToTheMain


class _NumberedBatch(list):
    """A batch of indices that knows its number in the run (per rank)."""

    number = 0


class SeededBatchesInWorkers:
    """``dataset.__getitems__``: in a data worker, reseed numpy, python and
    torch from (seed, rank, batch number) before the batch's transforms, so
    what a worker draws for a batch does not depend on what it drew before.

    In the main process (``num_workers=0``) it only fetches: the draws come
    from the process's own streams, which ``RandomStateHook`` saves and
    restores.

    Args:
        dataset: The training dataset.
        seed (int): The run's seed.
        rank (int): This process's rank.
    """

    def __init__(self, dataset, seed: int, rank: int) -> None:
        self.dataset = dataset
        self.seed = seed
        self.rank = rank

    def __call__(self, indices: Sequence[int]) -> list:
        number = getattr(indices, 'number', None)
        if number is not None and \
                torch.utils.data.get_worker_info() is not None:
            seq = np.random.SeedSequence([self.seed, self.rank, number])
            seed = int(seq.generate_state(1)[0])
            np.random.seed(seed)
            random.seed(seed)
            torch.manual_seed(seed)
        return [self.dataset[i] for i in indices]


class _SizesOnly:
    """The dataset as mmdet's ``AspectRatioBatchSampler`` reads it while it
    is positioned: width and height only, each image's read once, so a
    resume at any k costs at most one ``get_data_info`` per image of the
    dataset (a 360k-iteration COCO run visits each image 6 times)."""

    def __init__(self, dataset) -> None:
        self.dataset = dataset
        self.sizes: Dict[int, dict] = {}

    def __len__(self) -> int:
        return len(self.dataset)

    def get_data_info(self, idx: int) -> dict:
        size = self.sizes.get(idx)
        if size is None:
            info = self.dataset.get_data_info(idx)
            size = self.sizes[idx] = dict(width=info['width'],
                                          height=info['height'])
        return size


@DATA_SAMPLERS.register_module()
class ResumableBatchSampler(Sampler):
    """A batch sampler (mmdet's ``AspectRatioBatchSampler``, or torch's
    ``BatchSampler`` when the config names none) that can be set to start
    at batch ``k`` without loading a sample.

    Args:
        sampler (Sampler): The sampler (``InfiniteSampler``,
            ``DefaultSampler``).
        batch_size (int): Images per batch.
        batch_sampler (dict, optional): The wrapped batch sampler's config;
            None for torch's ``BatchSampler``.
    """

    def __init__(self, sampler: Sampler, batch_size: int,
                 batch_sampler: Optional[dict] = None) -> None:
        if batch_sampler is None:
            self.batch_sampler = BatchSampler(sampler, batch_size,
                                              drop_last=False)
        else:
            self.batch_sampler = DATA_SAMPLERS.build(
                batch_sampler,
                default_args=dict(sampler=sampler, batch_size=batch_size))
        # _InfiniteDataloaderIterator and DistSamplerSeedHook set the epoch
        # of ``batch_sampler.sampler``.
        self.sampler = sampler
        self.batch_size = batch_size
        self._next_number = 0
        self._pending: Optional[Iterator] = None

    def __iter__(self) -> Iterator[List[int]]:
        batches, self._pending = (self._pending or iter(self.batch_sampler),
                                  None)
        for batch in batches:
            numbered = _NumberedBatch(batch)
            numbered.number = self._next_number
            self._next_number += 1
            yield numbered

    def __len__(self) -> int:
        return len(self.batch_sampler)

    def _restart_streams(self) -> None:
        """Forget the indices an earlier iterator drew (data workers
        prefetch at once): ``InfiniteSampler`` keeps one generator for all
        its iterations, mmdet's aspect-ratio samplers their buckets."""
        if hasattr(self.sampler, '_indices_of_rank'):
            self.sampler.indices = self.sampler._indices_of_rank()
        if hasattr(self.batch_sampler, '_aspect_ratio_buckets'):
            self.batch_sampler._aspect_ratio_buckets = [[] for _ in range(2)]

    def position(self, batches: int, epoch: int = 0) -> int:
        """Make the next iteration start after ``batches`` batches, as the
        loader's iterator would after fetching them from epoch ``epoch``.

        Returns:
            int: The epoch the loader's iterator is in after them (finite
            samplers restart, with ``set_epoch``, at each end).
        """
        self._restart_streams()
        if hasattr(self.sampler, 'set_epoch'):
            self.sampler.set_epoch(epoch)
        dataset = self.sampler.dataset
        if type(self.batch_sampler) is AspectRatioBatchSampler:
            self.sampler.dataset = _SizesOnly(dataset)
        try:
            it = iter(self.batch_sampler)
            for _ in range(batches):
                try:
                    next(it)
                except StopIteration:
                    epoch += 1
                    self.sampler.set_epoch(epoch)
                    it = iter(self.batch_sampler)
                    next(it)
        finally:
            # The rest of the iteration reads the dataset itself.
            self.sampler.dataset = dataset
        self._pending = it
        self._next_number = batches
        return epoch


def _shutdown_workers_of(loop_ref) -> None:
    loop = loop_ref()
    if loop is not None:
        loop.shutdown_workers()
    _kill_data_workers()


def _kill_data_workers() -> None:
    """SIGKILL every data-loader worker of this process still alive.

    The training loader's workers ignore SIGTERM
    (:class:`~.stop_checkpoint_hook.WorkersLeaveStopsToTheMain`), and
    multiprocessing's own exit handler ends daemonic children with SIGTERM
    and then waits on them without a timeout: a worker whose iterator was
    not shut down (its loop already collected, e.g. a runner deleted after
    training while the iterator lived on in a reference cycle) hung the
    process at exit forever (a CenterMask V2-57 run in ``make
    check-coco``). Every daemonic child is ended so, as multiprocessing's
    handler would end it, only with SIGKILL (a started ``Process`` no
    longer says what it runs); torch's SIGCHLD check is reset first: these
    workers are meant to end.
    """
    workers = [p for p in multiprocessing.active_children() if p.daemon]
    if not workers:
        return
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for p in workers:
        p.kill()
        p.join(timeout=5)


@LOOPS.register_module()
class ResumableIterBasedTrainLoop(IterBasedTrainLoop):
    """``IterBasedTrainLoop`` whose resume positions the data instead of
    replaying it (see the module docstring). Same arguments, same training:
    an uninterrupted run with ``num_workers=0`` is the one mmengine's loop
    trains.

    Args:
        runner (Runner): The runner.
        dataloader (dict or DataLoader): The training data; a dict (as
            configs give it) gets :class:`ResumableBatchSampler` around its
            batch sampler. A built ``DataLoader`` is replayed on resume.
        max_iters (int): Total training iterations.
        val_begin (int): The iteration that begins validating.
        val_interval (int): Validation interval.
        dynamic_intervals (list, optional): ``(milestone, interval)`` pairs.
    """

    def __init__(
            self,
            runner,
            dataloader: Union[DataLoader, Dict],
            max_iters: int,
            val_begin: int = 1,
            val_interval: int = 1000,
            dynamic_intervals: Optional[List[Tuple[int, int]]] = None) -> None:
        if isinstance(dataloader, dict):
            cfg = dict(dataloader)
            cfg['batch_sampler'] = dict(
                type='ResumableBatchSampler',
                batch_sampler=cfg.get('batch_sampler'))
            # Built here as BaseLoop builds it, so that the dataset is
            # seeded per batch before the first iterator forks workers.
            dataloader = runner.build_dataloader(
                cfg, seed=runner.seed,
                diff_rank_seed=runner._randomness_cfg.get(
                    'diff_rank_seed', False))
            # An instance attribute: torch's fetcher looks it up per batch.
            dataloader.dataset.__getitems__ = SeededBatchesInWorkers(
                dataloader.dataset, runner.seed, get_dist_info()[0])
            # StopCheckpointHook's stop is the main process's alone.
            dataloader.worker_init_fn = WorkersLeaveStopsToTheMain(
                dataloader.worker_init_fn)
        super().__init__(runner, dataloader, max_iters, val_begin,
                         val_interval, dynamic_intervals)
        self._position = False
        # Before multiprocessing's own exit handler (they run last first),
        # which terminates workers that ignore SIGTERM and waits on them.
        atexit.register(_shutdown_workers_of, weakref.ref(self))

    def shutdown_workers(self) -> None:
        """Stop the data workers as torch does when a loader is done."""
        iterator = getattr(self.dataloader_iterator, '_iterator', None)
        if hasattr(iterator, '_shutdown_workers'):
            iterator._shutdown_workers()

    def position_on_resume(self) -> bool:
        """Called by a hook at ``before_train`` that will restore the data
        pipeline's random state as it was before batch ``iter + 1``.

        Returns:
            bool: Whether the loop will position instead of replaying.
        """
        self._position = isinstance(self.dataloader.batch_sampler,
                                    ResumableBatchSampler)
        return self._position

    def _advance(self) -> None:
        """Skip the ``self._iter`` batches already trained on."""
        if not self._position:
            print_log(
                f'Advance dataloader {self._iter} steps to skip data '
                'that has already been trained (no saved data random '
                'state to resume from without the replay)',
                logger='current', level=logging.WARNING)
            for _ in range(self._iter):
                next(self.dataloader_iterator)
            return
        old = self.dataloader_iterator._iterator
        if hasattr(old, '_shutdown_workers'):
            old._shutdown_workers()
        if getattr(self.dataloader, '_iterator', None) is old:
            self.dataloader._iterator = None   # persistent workers' cache
        # The new iterator draws its base seed from torch's stream, which
        # holds the uninterrupted run's state by now: leave it as it is.
        torch_state = torch.get_rng_state()
        epoch = self.dataloader.batch_sampler.position(self._iter)
        self.dataloader_iterator = _InfiniteDataloaderIterator(
            self.dataloader)
        self.dataloader_iterator._epoch = epoch
        torch.set_rng_state(torch_state)
        print_log(
            f'Positioned the data at batch {self._iter} (epoch {epoch} of '
            'the sampler) without loading it',
            logger='current', level=logging.INFO)

    def run(self) -> None:
        """Launch training (mmengine's, with :meth:`_advance` on resume)."""
        self.runner.call_hook('before_train')
        self.runner.call_hook('before_train_epoch')
        if self._iter > 0:
            self._advance()
        while self._iter < self._max_iters and not self.stop_training:
            self.runner.model.train()

            data_batch = next(self.dataloader_iterator)
            self.run_iter(data_batch)

            self._decide_current_val_interval()
            if (self.runner.val_loop is not None
                    and self._iter >= self.val_begin
                    and (self._iter % self.val_interval == 0
                         or self._iter == self._max_iters)):
                self.runner.val_loop.run()

        self.runner.call_hook('after_train_epoch')
        self.runner.call_hook('after_train')
        return self.runner.model
