"""Check a resolved config's registry types and the arguments of its loops,
optimizer, schedulers and hooks before a run is launched.

A misspelt type outside the model (``optim_wrapper.optimizer.type: SGDD``)
or a misspelt argument (``train_cfg.max_iter``: an override's last key may be
new) would otherwise start a child that fails after queueing with
"None is not a callable object" or "unexpected keyword argument", naming no
key. The model itself is checked by building it.
"""
import inspect
from typing import Any, Iterator, List, Optional, Tuple

from mmengine.config import Config

# Keys whose ``type`` names an ``mmcv.ops`` function or class, not a registry
# entry (``batched_nms`` and mmdet's RoI extractors look them up by name).
_MMCV_OPS_TYPES = ('nms', 'roi_layer')
# Keys the builder consumes before calling the class.
_CONSUMED = {
    'optim_wrapper': {'paramwise_cfg', 'constructor'},
    'param_scheduler': {'convert_to_iter_based'},
}


def _registries() -> list:
    import mmdet.registry as mmdet_registry
    from mmengine.registry import FUNCTIONS, Registry
    found = [getattr(mmdet_registry, name) for name in dir(mmdet_registry)
             if isinstance(getattr(mmdet_registry, name), Registry)]
    return found + [FUNCTIONS]


def _typed_nodes(node: Any, path: str) -> Iterator[Tuple[str, dict]]:
    """Every dict with a string ``type`` under ``node``, with its path."""
    if isinstance(node, dict):
        if isinstance(node.get('type'), str):
            yield path, node
        for key, value in node.items():
            yield from _typed_nodes(value, f'{path}.{key}' if path else key)
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _typed_nodes(value, f'{path}.{i}')


def _lookup(type_name: str, registries: list) -> Optional[Any]:
    for registry in registries:
        try:
            found = registry.get(type_name)
        except Exception:  # noqa: BLE001 -- a scope that is not installed
            found = None
        if found is not None:
            return found
    return None


def _argument_roots(cfg: Config) -> List[Tuple[str, Any]]:
    """The sections whose keys are constructor arguments, with their path."""
    roots: List[Tuple[str, Any]] = []
    for name in ('train_cfg', 'val_cfg', 'test_cfg'):
        if isinstance(cfg.get(name), dict):
            roots.append((name, cfg[name]))
    wrapper = cfg.get('optim_wrapper')
    if isinstance(wrapper, dict):
        roots.append(('optim_wrapper', wrapper))
        if isinstance(wrapper.get('optimizer'), dict):
            roots.append(('optim_wrapper.optimizer', wrapper['optimizer']))
    schedulers = cfg.get('param_scheduler') or []
    if isinstance(schedulers, dict):
        schedulers = [schedulers]
    roots += [(f'param_scheduler.{i}', s) for i, s in enumerate(schedulers)]
    for name, hook in (cfg.get('default_hooks') or {}).items():
        roots.append((f'default_hooks.{name}', hook))
    roots += [(f'custom_hooks.{i}', h)
              for i, h in enumerate(cfg.get('custom_hooks') or [])]
    return [(path, node) for path, node in roots
            if isinstance(node, dict) and isinstance(node.get('type'), str)]


def _unknown_arguments(target: Any, node: dict, consumed: set) -> List[str]:
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return []
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return []
    return [key for key in node
            if key not in params and key not in consumed
            and key not in ('type', '_scope_')]


def _taken_arguments(target: Any) -> List[str]:
    """What a constructor takes, less what the runner passes itself."""
    return [p for p in inspect.signature(target).parameters
            if p not in ('self', 'runner', 'dataloader', 'params',
                         'optimizer', 'evaluator')]


def _section(path: str) -> str:
    return path.split('.')[0] if path.startswith('param_scheduler.') \
        else path


def argument_problem(path: str, node: dict, key: str) -> Optional[str]:
    """Why ``key`` cannot be a new argument of ``node`` (at ``path``).

    Call after :func:`~experiments.grid.run_config.register_types`.

    Returns:
        ``"<Type> takes no argument ..."``, or None when the type takes it,
        is not registered, or takes ``**kwargs`` (its build decides).
    """
    target = _lookup(node['type'], _registries())
    if target is None or not _unknown_arguments(
            target, {key: None}, _CONSUMED.get(_section(path), set())):
        return None
    return (f'{node["type"]} takes no argument "{key}" (it takes '
            f'{", ".join(_taken_arguments(target))})')


def config_problems(cfg: Config) -> List[str]:
    """One line per unknown registry type or unknown argument in ``cfg``.

    Registry types are looked up everywhere (model, data, evaluation,
    runtime) in mmdet's registries and their mmengine parents, after
    ``register_all_modules`` and the config's ``custom_imports``. Arguments
    are checked against the class's signature for the loops, optimizer
    wrapper, optimizer, parameter schedulers and hooks (the model's
    arguments are checked by building it); a class taking ``**kwargs``
    accepts any.
    """
    registries = _registries()
    problems = []
    from mmcv import ops
    for path, node in _typed_nodes(cfg.to_dict(), ''):
        if path.rsplit('.', 1)[-1] in _MMCV_OPS_TYPES:
            if not hasattr(ops, node['type']):
                problems.append(f'"{path}.type" = "{node["type"]}" is not an '
                                f'mmcv.ops name')
        elif _lookup(node['type'], registries) is None:
            problems.append(f'"{path}.type" = "{node["type"]}" is not a '
                            f'registered type')
    for path, node in _argument_roots(cfg):
        target = _lookup(node['type'], registries)
        if target is None:
            continue
        consumed = _CONSUMED.get(_section(path), set())
        for key in _unknown_arguments(target, node, consumed):
            problems.append(f'"{path}.{key}": {node["type"]} takes no '
                            f'argument "{key}" (it takes '
                            f'{", ".join(_taken_arguments(target))})')
    return problems
