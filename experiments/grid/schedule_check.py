"""Check a resolved run config's schedule values before anything is written.

A grid override such as ``train_cfg.max_iters: twenty`` or ``-5`` would
otherwise reach the child (a traceback there, or a run that "finishes" with
no AP) or the scheduler's cost estimate. Each value is checked where the
grid can set it, and the message names the config key, which is also the
override key that set it.
"""
import math
from typing import Any, List

from mmengine.config import Config


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def _need(problems: List[str], ok: bool, key: str, what: str,
          value: Any) -> None:
    if not ok:
        problems.append(f'{key} must be {what}, got {value!r}')


def schedule_problems(cfg: Config) -> List[str]:
    """What is wrong with ``cfg``'s schedule, one line per value."""
    problems: List[str] = []
    loop = cfg.get('train_cfg') or {}
    for key in ('max_iters', 'max_epochs', 'val_interval'):
        if key in loop:
            value = loop[key]
            _need(problems, _is_int(value) and value >= 1,
                  f'train_cfg.{key}', 'a positive integer', value)
    if 'val_begin' in loop:
        _need(problems, _is_int(loop.val_begin) and loop.val_begin >= 0,
              'train_cfg.val_begin', 'an integer >= 0', loop.val_begin)
    loader = cfg.get('train_dataloader') or {}
    if 'batch_size' in loader:
        _need(problems, _is_int(loader.batch_size) and loader.batch_size >= 1,
              'train_dataloader.batch_size', 'a positive integer',
              loader.batch_size)
    if 'num_workers' in loader:
        _need(problems,
              _is_int(loader.num_workers) and loader.num_workers >= 0,
              'train_dataloader.num_workers', 'an integer >= 0',
              loader.num_workers)
    for name, hook in (cfg.get('default_hooks') or {}).items():
        if isinstance(hook, dict) and 'interval' in hook:
            _need(problems,
                  _is_int(hook['interval']) and hook['interval'] >= 1,
                  f'default_hooks.{name}.interval', 'a positive integer',
                  hook['interval'])
    optimizer = (cfg.get('optim_wrapper') or {}).get('optimizer') or {}
    if 'lr' in optimizer:
        _need(problems, _is_number(optimizer['lr']) and optimizer['lr'] > 0,
              'optim_wrapper.optimizer.lr', 'a positive finite number',
              optimizer['lr'])
    schedulers = cfg.get('param_scheduler') or []
    if isinstance(schedulers, dict):
        schedulers = [schedulers]
    for i, sched in enumerate(schedulers):
        where = f'param_scheduler.{i}'
        for key in ('begin', 'end'):
            if key in sched:
                _need(problems, _is_number(sched[key]) and sched[key] >= 0,
                      f'{where}.{key}', 'a number >= 0', sched[key])
        if (_is_number(sched.get('begin')) and _is_number(sched.get('end'))
                and sched['end'] <= sched['begin']):
            problems.append(f'{where}: end ({sched["end"]}) must be after '
                            f'begin ({sched["begin"]})')
        if 'milestones' in sched:
            ms = sched['milestones']
            _need(problems, isinstance(ms, (list, tuple)) and all(
                _is_int(m) and m >= 0 for m in ms), f'{where}.milestones',
                'a list of integers >= 0', ms)
    return problems
