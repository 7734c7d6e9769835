"""Resuming the project's own checkpoints under torch >= 2.6.

torch 2.6 made ``torch.load(weights_only=True)`` the default. mmengine 0.10.7
checkpoints pickle ``HistoryBuffer`` objects and numpy arrays in their
``message_hub`` and ``meta``, so ``resume``/``load_from`` fail with an
``UnpicklingError``. Allow-listing those classes globally
(``torch.serialization.add_safe_globals``) would also trust any checkpoint
from anywhere. Instead the full unpickler is used only for files inside a
directory the caller vouches for -- the run's own ``work_dir`` -- and every
other path keeps torch's safe default.

This is the one place in the project that loosens ``weights_only``.
"""
import contextlib
import os.path as osp
from typing import Callable, Iterator, List, Optional, Union

import torch
from mmengine.registry import RUNNERS
from mmengine.runner import Runner
from mmengine.runner.checkpoint import CheckpointLoader

_trusted_roots: List[str] = []


def _is_trusted(filename: str) -> bool:
    path = osp.realpath(filename)
    return any(
        osp.commonpath([path, root]) == root for root in _trusted_roots)


@contextlib.contextmanager
def trust_checkpoints_under(directory: str) -> Iterator[None]:
    """Load checkpoints below ``directory`` with the full unpickler.

    Args:
        directory: A run's own work dir. Only files whose real path lies
            inside it are loaded with ``weights_only=False``.
    """
    root = osp.realpath(directory)
    _trusted_roots.append(root)
    try:
        yield
    finally:
        _trusted_roots.remove(root)


@CheckpointLoader.register_scheme(prefixes='', force=True)
def load_from_local(filename: str,
                    map_location: Optional[Union[str, Callable]] = None):
    """mmengine's local loader, trusting only the active work dirs.

    Replaces mmengine's ``load_from_local`` (same name, same contract); the
    only difference is ``weights_only=False`` for trusted files.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    if _is_trusted(filename):
        return torch.load(filename, map_location=map_location,
                          weights_only=False)
    return torch.load(filename, map_location=map_location)


@RUNNERS.register_module()
class TrustedCheckpointRunner(Runner):
    """mmengine ``Runner`` that can resume its own checkpoints on torch>=2.6.

    Select it with ``runner_type = 'TrustedCheckpointRunner'`` in a config
    (mmdet's ``tools/train.py`` honours ``runner_type``). Checkpoints in
    ``work_dir`` -- written by this run -- load with the full unpickler;
    ``load_from`` paths elsewhere keep torch's ``weights_only`` default.
    """

    def load_checkpoint(self, filename: str, *args, **kwargs):
        with trust_checkpoints_under(self.work_dir):
            return super().load_checkpoint(filename, *args, **kwargs)


__all__ = ['TrustedCheckpointRunner', 'trust_checkpoints_under',
           'load_from_local']
