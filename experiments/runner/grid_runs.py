"""From a grid's cells to runs the runner can start: the command line's
hardware applied, every config resolved and checked, problems collected."""
import dataclasses
import os
import os.path as osp
from typing import Dict, List, Optional, Tuple

from experiments.data.coco_check import CocoFormatError
from experiments.data.prepare import PreparedDataset, prepare_dataset
from experiments.grid.run_config import (
    ConfigBuildError,
    check_model_builds,
    config_hash,
    resolve_run,
)
from experiments.grid.spec import GridSpec, GridSpecError, RunSpec
from experiments.plan.weights_check import (
    drop_unavailable_weights,
    refusal,
    run_weight_sources,
    weight_sources,
)
from experiments.runner.launch import PlannedRun
from experiments.runner.lock import is_locked
from experiments.store import (RUN_META, run_dir_name, run_status,
                               schedule_length)


def with_hardware(runs: List[RunSpec], processes: Optional[int],
                  max_images: Optional[int]) -> List[RunSpec]:
    """The runs with the command line's processes / memory limit, which
    describe the hardware at hand and so win over the grid's."""
    changes = {}
    if processes is not None:
        changes['processes'] = processes
    if max_images is not None:
        changes['max_images_per_process'] = max_images
    return [dataclasses.replace(r, **changes) for r in runs] if changes \
        else runs


def select(runs: List[RunSpec], only: List[str]) -> List[RunSpec]:
    for item in only:
        field, _, value = item.partition('=')
        if field not in ('model', 'arm', 'dataset', 'seed') or not value:
            raise GridSpecError(f'--only {item!r}: use model=, arm=, '
                                f'dataset= or seed=')
        runs = [r for r in runs if str(getattr(r, field)) == value]
    return runs


def estimated_cost(p: PlannedRun) -> float:
    """Training-loop iterations (an epoch schedule counted in iterations at
    the run's placement) times processes.

    Runs are started longest first, which leaves short runs to fill the
    slots at the end of the grid, when fewer runs than slots are left.
    """
    return float(schedule_length(p.cfg, max(p.dataset.train_images, 1))
                 * p.processes)


def _shown(path: str) -> str:
    """``path`` relative to the working directory when under it."""
    rel = osp.relpath(path)
    return path if rel.startswith('..') else rel


def plan(grid: GridSpec, runs: List[RunSpec], work_dir: str,
         devices: int = 1, random_init_missing_weights: bool = False
         ) -> Tuple[List[PlannedRun], List[str]]:
    """Resolve every run; collect every problem instead of stopping early.

    Args:
        devices: GPUs (or CPU slots) one run may take: a run without a
            process count of its own takes as many as split its total batch.
        random_init_missing_weights: Start from random initialisation where
            an initial weight is not in its cache (recorded in the run's
            config, so it is another run); otherwise each missing weight is
            a problem (``experiments/plan/weights_check.py``).

    Returns:
        The planned runs and the problems found.
    """
    problems: List[str] = []
    datasets: Dict[str, PreparedDataset] = {}
    for name in sorted({r.dataset for r in runs}):
        try:
            datasets[name] = prepare_dataset(grid.datasets[name], grid.path)
        except (CocoFormatError, ValueError) as e:
            problems.append(str(e))
    planned, built = [], set()

    def refuse(missing: list) -> None:
        # Arms and seeds share a backbone: one line per file.
        problems.extend(line for line in (
            refusal(s, _shown(grid.path)) for s in missing)
            if line not in problems)

    for run in runs:
        if run.dataset not in datasets:
            if not random_init_missing_weights:
                # The weights do not depend on the data: say both now.
                try:
                    refuse([s for s in run_weight_sources(
                        run, f'{grid.path}: run {run.label}')
                        if not s.available])
                except (ConfigBuildError, GridSpecError):
                    pass   # said once the data is there
            continue
        dataset = datasets[run.dataset]
        try:
            cfg, recipe = resolve_run(run, dataset, grid.path, devices)
            # Before the run id: random init makes another run.
            missing = [s for s in weight_sources(cfg, run.config)
                       if not s.available]
            if missing and random_init_missing_weights:
                drop_unavailable_weights(cfg, missing)
                missing = []
            run_id = config_hash(cfg)
            run_dir = osp.join(work_dir, run_dir_name(
                run.model, run.arm, run.dataset, run.seed, run_id))
            # One build per model/arm/dataset: the seed does not change it.
            # A run that has started was built when it was first planned.
            key = (run.model, run.arm, run.dataset)
            if key not in built and not osp.isfile(
                    osp.join(run_dir, RUN_META)):
                check_model_builds(cfg, f'{grid.path}: run {run.label}')
                built.add(key)
        except (ConfigBuildError, GridSpecError) as e:
            problems.append(str(e))
            continue
        if missing:
            refuse(missing)
            continue
        planned.append(PlannedRun(run, run_id, run_dir, cfg, dataset,
                                  recipe))
    return planned, problems


def check_work_dir(work_dir: str) -> Optional[str]:
    """What stops the runner writing under ``work_dir``, or None."""
    if osp.exists(work_dir) and not osp.isdir(work_dir):
        return f'work dir {work_dir} exists and is not a directory'
    try:
        os.makedirs(work_dir, exist_ok=True)
        probe = osp.join(work_dir, f'.write-test-{os.getpid()}')
        with open(probe, 'w') as f:
            f.write('ok')
        os.remove(probe)
    except OSError as e:
        return (f'work dir {work_dir} is not writable ({e.strerror}: '
                f'{e.filename or work_dir})')
    return None


def print_dry_run(planned: List[PlannedRun]) -> None:
    for p in planned:
        status = run_status(p.run_dir)
        if status != 'finished' and is_locked(p.run_dir):
            status = 'running'
        print(f'  {status:11s} {p.run.label:45s} {osp.basename(p.run_dir)}')
        r = p.recipe
        print(f'      batch {r.placement.text()}, LR {r.actual.lr:g}, '
              f'{r.actual.schedule_text()}; recipe: {r.summary()} (paper: '
              f'batch {r.paper.total_batch}, LR {r.paper.lr:g}; '
              f'{r.paper.source})')
        if status == 'damaged':
            print('      FINISHED.json does not read back; the next run '
                  'evaluates the run again from its last checkpoint')
        for key, value in p.run.overrides.items():
            print(f'      {key} = {value!r}')
        for key, value in p.run.cfg_options.items():
            print(f'      {key} = {value!r} (--cfg-options)')
        for key, value in (p.cfg.get('random_init_weights') or {}).items():
            print(f'      {key}: random init ({value} is not in its '
                  f'cache; --random-init-missing-weights)')
