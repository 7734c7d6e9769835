"""A run's total batch, its placement on processes, and the paper's recipe.

Every config of this repository declares the recipe its numbers are meant
for (``paper_recipe``): the total batch (images per optimizer step, over all
GPUs), the base LR, the warm-up and the schedule, with the official file it
comes from::

    paper_recipe = dict(
        total_batch=16, lr=0.01, warmup_iters=1000, warmup_factor=0.001,
        max_iters=90000, milestones=[60000, 80000],
        source='centermask2 Base-CenterMask-VoVNet.yaml + detectron2 defaults')

A grid says the total batch it trains at (``total_batch``; default: the
recipe's). The runner then *places* it on the hardware it has:
``processes x images per process x accumulation steps`` (8 GPUs x 2; 1 GPU x
2 x 8 accumulation; 1 CPU process x 4), see :func:`place`. Placement never
changes the recipe: the LR, warm-up and schedule are counted in optimizer
steps, and accumulation only multiplies the loop's iteration counts (each
micro-batch is an mmengine iteration; the LR schedulers step once per
optimizer step, ``AccumulatedParamSchedulerHook``).

A run whose total batch or LR differs from its config's recipe is refused at
planning, unless the grid names the rule (``lr_scaling``):

- ``none`` (default): total batch and LR must equal the recipe's.
- ``linear``: the linear scaling rule as detectron2's
  ``DefaultTrainer.auto_scale_workers`` applies it: for ``k = total_batch /
  recipe total_batch``, LR x k; warm-up iterations, ``max_iters``, the
  LR-step milestones and the checkpoint interval / k (rounded); epoch-based
  schedules keep their epochs (the same images seen).
- ``manual``: the grid sets batch and LR itself (overrides); nothing is
  checked, and the results row says so.

Where a run's recipe differs from the paper's (a rule applied, a shortened
schedule), :func:`recipe_summary` says how, for the results row and the
report's paper tables.

Memory is judged by one number: the most images one process may take
(``max_images_per_process``; default: the config's
``train_dataloader.batch_size``, the per-GPU batch the recipe was run with).
A bigger GPU takes more only when the grid (or ``--max-images-per-process``)
says so: a wrong guess is an out-of-memory kill an hour into a run.
"""
import dataclasses
import math
from typing import Any, Dict, List, Optional

from experiments.grid.spec import LR_SCALING


class RecipeError(ValueError):
    """A run's batch, LR or placement cannot follow its recipe."""


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A training recipe, counted in optimizer steps.

    Attributes:
        total_batch: Images per optimizer step over all processes.
        lr: Base learning rate.
        warmup_iters: Optimizer steps of warm-up (0: none).
        warmup_factor: LR factor the warm-up starts from.
        warmup_method: ``linear`` (factor rises to 1, mmengine ``LinearLR``,
            detectron2 / maskrcnn-benchmark ``linear``) or ``constant``
            (factor held, ``ConstantLR``).
        max_iters: Length of an iteration-based schedule (None: by epochs).
        max_epochs: Length of an epoch-based schedule (None: by iterations).
        milestones: LR steps, in the schedule's unit.
        source: Where the numbers come from.
    """

    total_batch: int
    lr: float
    warmup_iters: int = 0
    warmup_factor: float = 1.0
    warmup_method: str = 'linear'
    max_iters: Optional[int] = None
    max_epochs: Optional[int] = None
    milestones: tuple = ()
    source: str = ''

    def scaled(self, total_batch: int) -> 'Recipe':
        """This recipe at another total batch, by the linear scaling rule
        (detectron2 ``auto_scale_workers``)."""
        k = total_batch / self.total_batch
        iters = self.max_iters is not None
        return dataclasses.replace(
            self, total_batch=total_batch, lr=self.lr * k,
            warmup_iters=int(round(self.warmup_iters / k)),
            max_iters=int(round(self.max_iters / k)) if iters else None,
            milestones=tuple(int(round(m / k)) for m in self.milestones)
            if iters else self.milestones)

    def schedule_text(self) -> str:
        unit = 'iters' if self.max_iters is not None else 'epochs'
        length = self.max_iters if self.max_iters is not None \
            else self.max_epochs
        steps = '/'.join(str(m) for m in self.milestones) or 'none'
        warm = (f'{self.warmup_method} warm-up {self.warmup_iters} x'
                f'{self.warmup_factor:g}'
                if self.warmup_iters else 'no warm-up')
        return f'{length} {unit}, steps {steps}, {warm}'


@dataclasses.dataclass(frozen=True)
class Placement:
    """How a total batch is spread: processes x images x accumulation."""

    processes: int
    images_per_process: int
    accumulation: int

    @property
    def total_batch(self) -> int:
        return self.processes * self.images_per_process * self.accumulation

    def text(self) -> str:
        acc = f' x {self.accumulation} accumulation' \
            if self.accumulation > 1 else ''
        return (f'{self.processes} process(es) x {self.images_per_process} '
                f'image(s){acc} = {self.total_batch}')


def place(total_batch: int, processes: int,
          max_images_per_process: int) -> Placement:
    """Spread ``total_batch`` images over ``processes``.

    Each process takes the largest number of images that divides its share
    and fits ``max_images_per_process``; accumulation makes up the rest.

    Raises:
        RecipeError: ``processes`` does not divide the total batch.
    """
    if total_batch < 1 or processes < 1 or max_images_per_process < 1:
        raise RecipeError(f'total batch {total_batch}, {processes} processes'
                          f', {max_images_per_process} images per process: '
                          f'each must be at least 1')
    if total_batch % processes:
        raise RecipeError(f'total batch {total_batch} does not split over '
                          f'{processes} processes; use a process count that '
                          f'divides it')
    share = total_batch // processes
    images = max(d for d in range(1, min(share, max_images_per_process) + 1)
                 if share % d == 0)
    return Placement(processes, images, share // images)


def _schedulers(cfg) -> List[dict]:
    schedulers = cfg.get('param_scheduler') or []
    return [schedulers] if isinstance(schedulers, dict) else list(schedulers)


WARMUP_TYPES = {'LinearLR': 'linear', 'ConstantLR': 'constant'}


def _warmup(cfg) -> Optional[dict]:
    for sched in _schedulers(cfg):
        if sched.get('type') in WARMUP_TYPES and not sched.get(
                'by_epoch', True) and sched.get('begin', 0) == 0:
            return sched
    return None


def _warmup_factor(sched: dict) -> float:
    # mmengine's defaults: LinearLR start_factor 1/3, ConstantLR factor 1/3.
    key = 'start_factor' if sched['type'] == 'LinearLR' else 'factor'
    return float(sched.get(key, 1 / 3))


def _steps(cfg) -> Optional[dict]:
    for sched in _schedulers(cfg):
        if sched.get('type') == 'MultiStepLR':
            return sched
    return None


def config_recipe(cfg, total_batch: int, source: str = '') -> Recipe:
    """What ``cfg`` trains, per optimizer step, at ``total_batch``."""
    loop = cfg.get('train_cfg') or {}
    warm = _warmup(cfg)
    steps = _steps(cfg)
    by_iters = 'max_iters' in loop
    return Recipe(
        total_batch=total_batch,
        lr=float(cfg.optim_wrapper.optimizer.lr),
        warmup_iters=int(warm['end'] - warm.get('begin', 0)) if warm else 0,
        warmup_factor=_warmup_factor(warm) if warm else 1.0,
        warmup_method=WARMUP_TYPES[warm['type']] if warm else 'linear',
        max_iters=int(loop['max_iters']) if by_iters else None,
        max_epochs=None if by_iters else int(loop.get('max_epochs', 0)),
        milestones=tuple(int(m) for m in steps['milestones']) if steps
        else (),
        source=source)


def declared_recipe(cfg) -> Recipe:
    """The recipe ``cfg`` declares (``paper_recipe``).

    A config without one (an mmdet config used as is) is taken at its word
    by mmdet's convention: its LR and schedule are for
    ``auto_scale_lr.base_batch_size`` images per step.

    Raises:
        RecipeError: ``paper_recipe`` has unknown keys or lacks the batch/LR.
    """
    declared = cfg.get('paper_recipe')
    if declared is None:
        base = (cfg.get('auto_scale_lr') or {}).get('base_batch_size')
        if not base:
            raise RecipeError('the config declares no paper_recipe and no '
                              'auto_scale_lr.base_batch_size: its total '
                              'batch is unknown')
        return config_recipe(cfg, int(base), source=(
            'the config itself (auto_scale_lr.base_batch_size, mmdet '
            'convention)'))
    fields = {f.name for f in dataclasses.fields(Recipe)}
    unknown = sorted(set(declared) - fields)
    if unknown:
        raise RecipeError(f'paper_recipe has unknown key "{unknown[0]}" '
                          f'(allowed: {", ".join(sorted(fields))})')
    for key in ('total_batch', 'lr'):
        if key not in declared:
            raise RecipeError(f'paper_recipe lacks "{key}"')
    values = dict(declared)
    values['milestones'] = tuple(values.get('milestones') or ())
    return Recipe(**values)


def _differences(actual: Recipe, reference: Recipe) -> List[str]:
    """Warm-up and schedule values of ``actual`` that differ."""
    out = []
    for name in ('warmup_iters', 'warmup_factor', 'warmup_method',
                 'max_iters', 'max_epochs', 'milestones'):
        a, r = getattr(actual, name), getattr(reference, name)
        if name in ('warmup_factor', 'warmup_method') and \
                not actual.warmup_iters and not reference.warmup_iters:
            continue
        if isinstance(a, float) or isinstance(r, float):
            same = a is not None and r is not None and math.isclose(
                a, r, rel_tol=1e-6)
        else:
            same = a == r
        if not same:
            show = (lambda v: '/'.join(map(str, v)) or 'none') \
                if name == 'milestones' else str
            out.append(f'{name} {show(a)} (paper {show(r)})')
    return out


@dataclasses.dataclass(frozen=True)
class RunRecipe:
    """A planned run's recipe: what it trains, against the paper's."""

    paper: Recipe
    actual: Recipe
    rule: str
    placement: Placement
    changes: tuple = ()

    def summary(self) -> str:
        """``paper``, ``linear 16->8``, ``manual`` [+ ``; changed: ...``]."""
        if self.rule == 'linear' and \
                self.actual.total_batch != self.paper.total_batch:
            head = f'linear {self.paper.total_batch}->' \
                f'{self.actual.total_batch}'
        elif self.rule == 'manual':
            head = 'manual'
        else:
            head = 'paper'
        return head + (f'; changed: {", ".join(self.changes)}'
                       if self.changes else '')

    def row(self) -> Dict[str, Any]:
        """The results-row columns of a run's batch and recipe."""
        return dict(world_size=self.placement.processes,
                    images_per_process=self.placement.images_per_process,
                    accumulation=self.placement.accumulation,
                    total_batch=self.actual.total_batch,
                    base_lr=self.actual.lr,
                    paper_total_batch=self.paper.total_batch,
                    paper_lr=self.paper.lr,
                    recipe=self.summary())


def _scale_iterations(cfg, factor: float, what: str) -> None:
    """Multiply every iteration count of ``cfg`` by ``factor`` (rounded).

    ``what``: ``loop`` (the train loop and hooks: micro-batch counts) or
    ``schedule`` (the loop, the LR schedulers and hooks: the linear rule).
    """
    def scaled(value):
        return max(1, int(round(value * factor)))

    loop = cfg.get('train_cfg') or {}
    if 'max_iters' in loop:
        loop['max_iters'] = scaled(loop['max_iters'])
        if loop.get('val_interval') and loop['val_interval'] < 10**8:
            loop['val_interval'] = scaled(loop['val_interval'])
    for hook in (cfg.get('default_hooks') or {}).values():
        if isinstance(hook, dict) and 'interval' in hook and not hook.get(
                'by_epoch', 'max_iters' not in loop):
            hook['interval'] = scaled(hook['interval'])
    if what != 'schedule':
        return
    for sched in _schedulers(cfg):
        if sched.get('by_epoch', True):
            continue
        for key in ('begin', 'end'):
            if isinstance(sched.get(key), (int, float)) and \
                    sched[key] < 10**8:
                sched[key] = int(round(sched[key] * factor))
        if 'milestones' in sched:
            sched['milestones'] = [int(round(m * factor))
                                   for m in sched['milestones']]


def default_processes(total_batch: int, devices: int) -> int:
    """The most processes, at most ``devices``, that split the batch."""
    return max(p for p in range(1, max(1, devices) + 1)
               if total_batch % p == 0)


def apply_run_recipe(cfg, total_batch: Optional[int], rule: str,
                     processes: Optional[int],
                     max_images_per_process: Optional[int],
                     devices: int = 1) -> RunRecipe:
    """Set ``cfg``'s batch, LR and schedule for ``total_batch`` on
    ``processes``, and check them against the paper's recipe.

    Args:
        cfg: The run's resolved config (grid overrides applied); changed in
            place.
        total_batch: The grid's total batch (None: the recipe's).
        rule: ``none``, ``linear`` or ``manual`` (see the module docstring).
        processes: Training processes of the run (None: as many of
            ``devices`` as split the total batch).
        max_images_per_process: Memory limit in images (None: the config's
            ``train_dataloader.batch_size``).
        devices: GPUs (or CPU slots) one run may take.

    Raises:
        RecipeError: One line naming the run's value and the recipe's.
    """
    if rule not in LR_SCALING:
        raise RecipeError(f'lr_scaling must be one of '
                          f'{", ".join(LR_SCALING)}, got {rule!r}')
    paper = declared_recipe(cfg)
    total = total_batch or paper.total_batch
    cap = max_images_per_process or int(cfg.train_dataloader.batch_size)
    placement = place(total, processes or default_processes(total, devices),
                      cap)
    if rule == 'none' and total != paper.total_batch:
        raise RecipeError(
            f'total batch {total} differs from the recipe\'s '
            f'{paper.total_batch} at LR {paper.lr:g} ({paper.source}); train '
            f'at total_batch: {paper.total_batch}, or set lr_scaling: linear '
            f'to scale LR and schedule to {total}')
    if rule == 'linear' and total != paper.total_batch:
        _scale_iterations(cfg, paper.total_batch / total, 'schedule')
        cfg.optim_wrapper.optimizer.lr = \
            cfg.optim_wrapper.optimizer.lr * total / paper.total_batch
    actual = config_recipe(cfg, total)
    reference = paper.scaled(total) if rule == 'linear' else paper
    if rule != 'manual' and not math.isclose(actual.lr, reference.lr,
                                             rel_tol=1e-9):
        raise RecipeError(
            f'LR {actual.lr:g} at total batch {total} differs from the '
            f'recipe\'s {reference.lr:g}'
            + (f' (linear rule from {paper.lr:g} at {paper.total_batch})'
               if rule == 'linear' and total != paper.total_batch else '')
            + f' ({paper.source}); remove the LR override or set '
            f'lr_scaling: manual')
    changes = tuple(_differences(actual, reference)) if rule != 'manual' \
        else ()

    # Placement: per-process batch, accumulation in micro-batches.
    cfg.train_dataloader.batch_size = placement.images_per_process
    if placement.accumulation > 1:
        if any(s.get('convert_to_iter_based') for s in _schedulers(cfg)):
            raise RecipeError('gradient accumulation with a '
                              'convert_to_iter_based LR scheduler is not '
                              'supported; give the run more processes or '
                              'images per process')
        cfg.optim_wrapper.accumulative_counts = placement.accumulation
        _scale_iterations(cfg, placement.accumulation, 'loop')
        if cfg.get('default_hooks') is None:
            cfg.default_hooks = {}
        cfg.default_hooks['param_scheduler'] = dict(
            type='AccumulatedParamSchedulerHook',
            accumulative_counts=placement.accumulation)
    # mmengine's own scaling counts processes x batch_size only (not
    # accumulation); the recipe is applied here instead.
    cfg.auto_scale_lr = dict(enable=False, base_batch_size=total)
    cfg.placement = dict(processes=placement.processes,
                         images_per_process=placement.images_per_process,
                         accumulation=placement.accumulation,
                         total_batch=total)
    return RunRecipe(paper=paper, actual=actual, rule=rule,
                     placement=placement, changes=changes)
