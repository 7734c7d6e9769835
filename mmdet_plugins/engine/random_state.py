"""A process's random state and a model's buffers, captured and put back
(what :class:`~mmdet_plugins.engine.random_state_hook.RandomStateHook`
saves beside each checkpoint)."""
import hashlib
import random
from typing import List

import numpy as np
import torch
from mmengine.model import is_model_wrapper


def capture_random_state() -> dict:
    """This process's torch (CPU; CUDA of the current device once CUDA is in
    use), numpy and python random state, as tensors and plain tuples only
    (the file loads with ``torch.load(weights_only=True)``)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, py_gauss = random.getstate()
    state = dict(torch=torch.get_rng_state(),
                 numpy=(kind, torch.from_numpy(keys.astype(np.int64)),
                        int(pos), int(has_gauss), float(gauss)),
                 python=(version, tuple(internal), py_gauss))
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state()
        state['cuda_device'] = torch.cuda.current_device()
    return state


def _numpy_state(saved) -> tuple:
    kind, keys, pos, has_gauss, gauss = saved
    return kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss


def _python_state(saved) -> tuple:
    version, internal, gauss = saved
    return version, tuple(internal), gauss


def same_data_random_state(saved: dict) -> bool:
    """Whether this process's numpy and python random state equal ``saved``'s
    (after the loop's replay, they do when the data's draws replayed)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    s_kind, s_keys, s_pos, s_has_gauss, s_gauss = _numpy_state(saved['numpy'])
    return (kind == s_kind and np.array_equal(keys, s_keys) and pos == s_pos
            and has_gauss == s_has_gauss and gauss == s_gauss
            and random.getstate() == _python_state(saved['python']))


def same_random_state(saved: dict) -> bool:
    """Whether every stream of this process (torch, CUDA once in use, numpy,
    python) equals ``saved``'s."""
    if not torch.equal(torch.get_rng_state(), saved['torch']):
        return False
    if 'cuda' in saved and torch.cuda.is_available() and not torch.equal(
            torch.cuda.get_rng_state(saved['cuda_device']), saved['cuda']):
        return False
    return same_data_random_state(saved)


def restore_random_state(saved: dict, data: bool) -> None:
    """Set torch (and CUDA) from ``saved``; numpy and python too if
    ``data``."""
    torch.set_rng_state(saved['torch'])
    if 'cuda' in saved and torch.cuda.is_available():
        torch.cuda.set_rng_state(saved['cuda'], saved['cuda_device'])
    if data:
        np.random.set_state(_numpy_state(saved['numpy']))
        random.setstate(_python_state(saved['python']))


def unwrap_model(model):
    return model.module if is_model_wrapper(model) else model


def restore_buffers(model, saved: dict) -> List[str]:
    """Copy this rank's saved buffers into ``model``; the names that could
    not be restored (missing or of another shape)."""
    missing = []
    for name, buf in unwrap_model(model).named_buffers():
        value = saved.get(name)
        if value is None or value.shape != buf.shape:
            missing.append(name)
            continue
        with torch.no_grad():
            buf.copy_(value.to(buf.device))
    return missing


def _feed(hasher, obj) -> None:
    if isinstance(obj, torch.Tensor):
        value = obj.detach().cpu().contiguous()
        hasher.update(f'T{value.dtype}{tuple(value.shape)}'.encode())
        if value.numel():
            hasher.update(value.reshape(-1).view(torch.uint8).numpy())
    elif isinstance(obj, dict):
        hasher.update(f'D{len(obj)}'.encode())
        for key in sorted(obj, key=repr):
            hasher.update(repr(key).encode())
            _feed(hasher, obj[key])
    elif isinstance(obj, (list, tuple)):
        hasher.update(f'L{len(obj)}'.encode())
        for item in obj:
            _feed(hasher, item)
    else:
        hasher.update(f'V{obj!r}'.encode())


def state_digest(obj) -> str:
    """SHA-1 of ``obj``: nested dicts / lists of tensors (their dtype, shape
    and bytes) and plain values; equal digests, bit-equal states."""
    hasher = hashlib.sha1()
    _feed(hasher, obj)
    return hasher.hexdigest()


def model_digest(model) -> str:
    """Digest of every parameter and buffer of ``model`` (unwrapped),
    non-persistent buffers included: what this process computes with."""
    module = unwrap_model(model)
    return state_digest(dict(module.state_dict(keep_vars=False),
                             **dict(module.named_buffers())))


def optimizer_digest(optim_wrapper) -> str:
    """Digest of an optimizer wrapper's per-parameter state (momentum and
    the like, an AMP loss scaler's), its ``param_groups`` left out (the LR
    schedulers may set them after this hook and before the checkpoint)."""
    def strip(state):
        return {k: (strip(v) if isinstance(v, dict) else v)
                for k, v in state.items() if k != 'param_groups'}
    return state_digest(strip(optim_wrapper.state_dict()))
