"""Strict checkpoint loading: a checkpoint that does not fit says so.

mmengine's ``load_checkpoint`` and ``Runner``'s ``load_from`` load
non-strictly: keys that do not fit are skipped with a log line (none at all
with ``logger='silent'``), so a model built from one config runs with
another model's weights and randomly initialised layers, and everything
measured on it looks plausible. :func:`load_weights` refuses that, naming
the keys, unless partial loading is asked for. Used by the export
(``tools/export_onnx.py``), cost measurement
(``experiments/cost/model_cost.py``, ``measure_cost.py``) and
``tools/count_mask_positives.py``; kept free of the export's onnx
dependencies.
"""
import os.path as osp
import re
import sys
from typing import Any, Dict, List, Optional, Tuple

import torch


class CheckpointMismatchError(ValueError):
    """A checkpoint's keys do not fit the model it is loaded into."""


def _some(keys: List[str], n: int = 3) -> str:
    shown = ', '.join(keys[:n])
    return shown + (f', ... (+{len(keys) - n} more)' if len(keys) > n else '')


def checkpoint_mismatch(model: torch.nn.Module, state: Dict[str, Any]
                        ) -> Tuple[List[str], List[str], List[str]]:
    """(missing, unexpected, of another shape) keys of ``state`` for
    ``model``. A missing BN ``num_batches_tracked`` counts as fitting (it
    only matters with ``momentum=None``; converted checkpoints lack it)."""
    from mmdet_plugins.converters.vovnet import compare_state_dicts
    return compare_state_dicts(model.state_dict(), state)


def mismatch_message(checkpoint: str, target: str, missing: List[str],
                     unexpected: List[str], shapes: List[str]) -> str:
    """One line naming what does not fit, a few keys of each kind."""
    parts = [f'{len(missing)} missing key(s)'
             + (f' ({_some(missing)})' if missing else ''),
             f'{len(unexpected)} unexpected key(s)'
             + (f' ({_some(unexpected)})' if unexpected else '')]
    if shapes:
        parts.append(f'{len(shapes)} of another shape, checkpoint vs '
                     f'model ({_some(shapes, 2)})')
    return (f'checkpoint {checkpoint} does not fit {target}: '
            + ', '.join(parts))


def load_weights(model: torch.nn.Module, checkpoint: str,
                 target: str = 'the model',
                 trusted_dir: Optional[str] = None,
                 allow_partial: bool = False) -> Dict[str, List[str]]:
    """Load ``checkpoint`` into ``model``, strictly unless ``allow_partial``.

    mmengine's ``load_checkpoint`` (and ``Runner``'s ``load_from``) load
    non-strictly: keys that do not fit are skipped with a log line, so a
    model built from one config silently runs with another model's weights
    and random layers. Here every key of the model must be in the
    checkpoint with its shape and the checkpoint may hold no other key
    (``module.`` prefixes removed, as mmengine does).

    Args:
        model: The built model.
        checkpoint: An mmengine checkpoint (``state_dict`` inside) or a
            plain state dict.
        target: What the model is, for the message (e.g. its config).
        trusted_dir: Checkpoints below it load with the full unpickler;
            default: the checkpoint's own directory.
        allow_partial: Load the keys that fit and leave the rest of the
            model as initialised (a warning on stderr counts them).

    Returns:
        ``missing``, ``unexpected`` and ``shapes`` (empty unless
        ``allow_partial``).

    Raises:
        FileNotFoundError: no such checkpoint.
        CheckpointMismatchError: keys do not fit and not ``allow_partial``;
            its message is one line naming counts and a few keys.
    """
    from mmengine.runner.checkpoint import _load_checkpoint

    from mmdet_plugins.engine import trust_checkpoints_under
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'{checkpoint}: no such checkpoint')
    with trust_checkpoints_under(trusted_dir
                                 or osp.dirname(osp.abspath(checkpoint))):
        loaded = _load_checkpoint(checkpoint, map_location='cpu')
    state = loaded.get('state_dict', loaded) if isinstance(loaded, dict) \
        else loaded
    if not isinstance(state, dict):
        raise CheckpointMismatchError(f'checkpoint {checkpoint} holds no '
                                      f'state dict ({type(state).__name__})')
    state = {re.sub(r'^module\.', '', k): v for k, v in state.items()}
    missing, unexpected, shapes = checkpoint_mismatch(model, state)
    found = dict(missing=missing, unexpected=unexpected, shapes=shapes)
    if missing or unexpected or shapes:
        message = mismatch_message(checkpoint, target, missing, unexpected,
                                   shapes)
        if not allow_partial:
            raise CheckpointMismatchError(message)
        own = model.state_dict()
        state = {k: v for k, v in state.items()
                 if k in own and tuple(v.shape) == tuple(own[k].shape)}
        print(f'warning: {message}; loading the {len(state)} key(s) that '
              f'fit (partial loading allowed)', file=sys.stderr)
    # strict=False only for a missing num_batches_tracked (checked above).
    model.load_state_dict(state, strict=False)
    return found
