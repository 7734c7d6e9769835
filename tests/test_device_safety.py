"""Every tensor the plugins create follows its inputs' device, checked
without a GPU (issue 37, item 3).

A ``torch.zeros(n)`` in a head passes every CPU test and fails on the first
GPU run ("Expected all tensors to be on the same device"). Two checks:

**Static** (every ``.py`` under ``mmdet_plugins/``, read with ``ast``):
refused, naming file and line, are

- a tensor factory (``torch.zeros``, ``ones``, ``empty``, ``full``,
  ``tensor``, ``as_tensor``, ``arange``, ``linspace``, ``rand*``, ``eye``,
  ...; ``torch.from_numpy`` and the legacy ``torch.FloatTensor`` kind)
  without ``device=``, or with a literal ``device='cpu'``;
- ``.cuda()``, ``.cpu()`` and ``.to('cpu' / 'cuda')``.

Allowed: ``*_like`` and ``x.new_*`` (they follow ``x``); a factory whose
result is moved at once (``.to(x)``, ``.to(x.device)``, ``.type_as(x)``); a
factory inside ``register_buffer(...)`` or ``nn.Parameter(...)`` (module
state moves with ``model.to()``); a tensor only handed to an ``mmengine.dist``
collective (it casts to the backend's device and back); ``.cpu()`` straight
into ``.numpy()`` / ``.tolist()`` / ``.item()`` (host values, not tensors);
and a line that says why: ``# device-safe: <reason>``.

Not forward paths, so not read: ``converters/`` (checkpoint files converted
offline, on the CPU) and ``engine/random_state*.py`` (random-number states
and checkpoint payloads: ``torch.get_rng_state()`` is a CPU tensor by
definition, and what is saved is copied to the CPU on purpose). Everything
else (``models/``, the other ``engine/`` hooks, ``export/``) is.

**Dynamic** (what a static reading cannot see: a factory reached through an
alias, ``getattr``, a helper): each family's tiny model runs ``loss`` and
``predict`` on CPU inputs with the *default device set to* ``meta`` for
tensor creation in ``mmdet_plugins`` code -- ``torch.set_default_device``'s
mechanism (a ``TorchFunctionMode`` over the same factories), scoped to the
plugins' frames. Every plugin factory call that does not name a device is
recorded (file:line), and its tensor lands on ``meta``, where mixing it with
the CPU inputs fails; the outputs must all be on the CPU.

Why not the ``meta`` device for the whole forward: mmcv's RoIAlign and NMS
have no meta kernels and decoding has data-dependent shapes (``nonzero``,
thresholds), so the forward stops for reasons unrelated to devices. Why not
``torch.set_default_device('meta')`` for every frame: the loss passes so,
but ``predict`` stops in mmcv's ``batched_nms`` at ``torch.tensor(1).to(
boxes)`` -- device-safe code, but a meta tensor cannot be copied out.
"""
import ast
import glob
import os.path as osp
import sys
from typing import Iterator, List, Optional

import pytest
import torch
from helpers import demo_inputs
from torch.overrides import TorchFunctionMode

from experiments.store import PROJECT_ROOT, project_path

PLUGINS = osp.join(PROJECT_ROOT, 'mmdet_plugins')
NOT_FORWARD = ('mmdet_plugins/converters/',
               'mmdet_plugins/engine/random_state.py',
               'mmdet_plugins/engine/random_state_hook.py')
FACTORIES = {
    'zeros', 'ones', 'empty', 'full', 'tensor', 'as_tensor', 'asarray',
    'arange', 'range', 'linspace', 'logspace', 'rand', 'randn', 'randint',
    'randperm', 'eye', 'scalar_tensor', 'empty_strided', 'tril_indices',
    'triu_indices', 'from_numpy', 'Tensor', 'FloatTensor', 'DoubleTensor',
    'HalfTensor', 'LongTensor', 'IntTensor', 'BoolTensor', 'ByteTensor'}
HOST_VALUES = ('numpy', 'tolist', 'item')
MODULE_STATE = ('register_buffer', 'Parameter')
OPT_OUT = '# device-safe:'


def _parents(tree: ast.AST) -> dict:
    return {child: node for node in ast.walk(tree)
            for child in ast.iter_child_nodes(node)}


def _literal_device(node: Optional[ast.AST]) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _moved_at_once(call: ast.Call, parents: dict) -> bool:
    """``call`` is the receiver of ``.to(<a tensor or device>)`` or
    ``.type_as(...)``."""
    attr = parents.get(call)
    outer = parents.get(attr)
    if not (isinstance(attr, ast.Attribute) and isinstance(outer, ast.Call)
            and outer.func is attr):
        return False
    if attr.attr == 'type_as':
        return True
    if attr.attr != 'to':
        return False
    device = next((k.value for k in outer.keywords if k.arg == 'device'),
                  outer.args[0] if outer.args else None)
    # .to(torch.float32) changes the dtype only; .to('cpu') is a device.
    is_dtype = isinstance(device, ast.Attribute) and isinstance(
        device.value, ast.Name) and device.value.id == 'torch'
    return device is not None and not is_dtype and \
        not _literal_device(device)


def _inside(node: ast.AST, parents: dict, names: tuple) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else \
                getattr(func, 'id', None)
            if name in names:
                return True
    return False


def _collective_names(tree: ast.AST) -> set:
    """Names this module imports from ``mmengine.dist``."""
    return {alias.asname or alias.name for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
            and node.module == 'mmengine.dist' for alias in node.names}


def _only_for_a_collective(call: ast.Call, parents: dict,
                           collectives: set) -> bool:
    """``v = torch.tensor(...)`` whose ``v`` goes to an mmengine.dist
    collective in the same function."""
    assign = parents.get(call)
    if not (isinstance(assign, ast.Assign) and len(assign.targets) == 1
            and isinstance(assign.targets[0], ast.Name)):
        return False
    scope = assign
    while scope in parents and not isinstance(
            scope, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Module)):
        scope = parents[scope]
    name = assign.targets[0].id
    return any(isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
               and node.func.id in collectives and node.args
               and isinstance(node.args[0], ast.Name)
               and node.args[0].id == name for node in ast.walk(scope))


def _problem(call: ast.Call, parents: dict, collectives: set
             ) -> Optional[str]:
    func = call.func
    if not isinstance(func, ast.Attribute):
        return None
    if isinstance(func.value, ast.Name) and func.value.id == 'torch' and \
            func.attr in FACTORIES:
        device = next((k.value for k in call.keywords if k.arg == 'device'),
                      None)
        if device is not None and not _literal_device(device):
            return None
        if _moved_at_once(call, parents) or \
                _inside(call, parents, MODULE_STATE) or \
                _only_for_a_collective(call, parents, collectives):
            return None
        where = 'on the CPU' if device is None else \
            f'on {device.value!r}'
        return (f'torch.{func.attr}(...) is created {where} whatever its '
                f'inputs\' device: give device=<input>.device, or use '
                f'<input>.new_*(...)')
    if func.attr == 'cuda' or (func.attr == 'to' and call.args and
                               _literal_device(call.args[0])):
        return f'.{func.attr}(...) moves to a fixed device'
    if func.attr == 'cpu':
        attr = parents.get(call)
        if isinstance(attr, ast.Attribute) and attr.attr in HOST_VALUES:
            return None
        return '.cpu() moves to a fixed device'
    return None


def scan(source: str, name: str) -> Iterator[str]:
    """``name:line: why`` for each call of ``source`` that ignores its
    inputs' device (see the module doc for the rules)."""
    tree = ast.parse(source)
    lines = source.splitlines()
    parents = _parents(tree)
    collectives = _collective_names(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        why = _problem(node, parents, collectives)
        if why is None:
            continue
        span = lines[node.lineno - 1:node.end_lineno]
        reasons = [line.split(OPT_OUT, 1)[1].strip() for line in span
                   if OPT_OUT in line]
        if any(reasons):
            continue
        yield f'{name}:{node.lineno}: {why} ({OPT_OUT} <why> allows it)'


def plugin_files() -> List[str]:
    found = sorted(glob.glob(osp.join(PLUGINS, '**', '*.py'),
                             recursive=True))
    return [path for path in found if not osp.relpath(
        path, PROJECT_ROOT).startswith(NOT_FORWARD)]


def test_every_plugin_module_creates_tensors_on_its_inputs_device():
    problems = []
    for path in plugin_files():
        with open(path) as f:
            problems += scan(f.read(), osp.relpath(path, PROJECT_ROOT))
    assert not problems, '\n' + '\n'.join(problems)


@pytest.mark.parametrize('code,refused', [
    ('y = torch.zeros(n)', True),
    ('y = torch.arange(n, dtype=torch.float32)', True),
    ('y = torch.tensor([1.0], device="cpu")', True),
    ('y = torch.from_numpy(a)', True),
    ('y = x.cuda()', True),
    ('y = x.cpu()', True),
    ('y = x.to("cpu")', True),
    ('y = torch.zeros(n).to(torch.float16)', True),
    ('y = torch.zeros(n, device=x.device)', False),
    ('y = x.new_zeros(n)', False),
    ('y = torch.zeros_like(x)', False),
    ('y = torch.tensor([1.0]).to(x)', False),
    ('y = torch.from_numpy(a).to(x.device)', False),
    ('self.register_buffer("b", torch.zeros(n))', False),
    ('y = x.cpu().numpy()', False),
    ('y = torch.zeros(n)  # device-safe: only counted, never mixed', False),
    ('y = torch.zeros(n)  # device-safe:', True),
    ('from mmengine.dist import all_reduce\n'
     'def f():\n    flag = torch.tensor([1])\n    all_reduce(flag)', False),
])
def test_the_scan_refuses_only_what_ignores_the_inputs(code, refused):
    assert bool(list(scan(code, 'x.py'))) == refused


class PluginTensorsOnMeta(TorchFunctionMode):
    """The default device ``meta`` for tensor factories called from
    ``mmdet_plugins`` frames; each such call is recorded as file:line."""

    def __init__(self) -> None:
        super().__init__()
        from torch.utils._device import _device_constructors
        self.constructors = _device_constructors()
        self.torch_dir = osp.dirname(torch.__file__)
        # Where the imported plugins live (the checkout, or an install).
        import mmdet_plugins
        self.plugins = osp.dirname(mmdet_plugins.__file__)
        self.sites: List[str] = []

    def _caller(self) -> str:
        frame = sys._getframe(2)
        while frame is not None and \
                frame.f_code.co_filename.startswith(self.torch_dir):
            frame = frame.f_back
        return '' if frame is None else \
            f'{frame.f_code.co_filename}:{frame.f_lineno}'

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in self.constructors and kwargs.get('device') is None:
            caller = self._caller()
            if caller.startswith(self.plugins):
                self.sites.append(osp.relpath(
                    caller, osp.dirname(self.plugins)))
                kwargs['device'] = torch.device('meta')
        return func(*args, **kwargs)


def _tensors(obj) -> Iterator[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from _tensors(value)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            yield from _tensors(value)
    elif hasattr(obj, 'pred_instances'):
        yield from _tensors(dict(obj.pred_instances.items()))


@pytest.mark.parametrize('config', [
    'configs/centermask/centermask_r18-tiny_fpn_builtin.py',
    'configs/centermask/centermask-lite_v-19-slim-dw-tiny_fpn_builtin.py',
    'configs/retinamask/retinamask_r18-tiny_fpn_builtin.py',
    'configs/retinamask/retinanet_r18-tiny_fpn_builtin_retinamask-recipe.py',
])
def test_forward_tensors_follow_the_inputs(config):
    """``loss`` and ``predict`` of each family's tiny model."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config
    register_all_modules()
    cfg = Config.fromfile(project_path(config))
    if 'score_thr' in cfg.model.test_cfg:
        # Untrained scores: keep detections, so the mask branch runs.
        cfg.model.test_cfg.score_thr = 0.0
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    for mode in ('loss', 'predict'):
        model.train(mode == 'loss')
        data = model.data_preprocessor(demo_inputs(), mode == 'loss')
        on_meta = PluginTensorsOnMeta()
        with torch.set_grad_enabled(mode == 'loss'), on_meta:
            try:
                out = model(**data, mode=mode)
            except (RuntimeError, NotImplementedError) as e:
                pytest.fail(f'{mode}: {e} (tensors created without a '
                            f'device at: {sorted(set(on_meta.sites))})')
        assert not on_meta.sites, (mode, sorted(set(on_meta.sites)))
        assert {t.device.type for t in _tensors(out)} == {'cpu'}, mode
