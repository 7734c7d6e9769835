"""Which run dirs a grid's ``results.csv`` lists, and whether the grid is done.

The table lists every run of the grid that is on disk, whatever ``--only``
selected this time: for a cell (model, arm, dataset, seed) in the selection,
the run dir it resolves to now; for a cell outside it, the run dir the table
listed before (``grid_runs.json``) or, failing that, the one run dir on disk
for that cell. Run dirs of an earlier version of a config are left out: they
are not this grid's result.
"""
import os
import os.path as osp
from typing import Dict, List, Tuple

from experiments.grid.spec import GridSpec, RunSpec
from experiments.store import (
    MANIFEST,
    listed_run_dirs,
    read_run_meta,
    run_dir_name,
    run_status,
)

Cell = Tuple[str, str, str, int]


def cell(run: RunSpec) -> Cell:
    return (run.model, run.arm, run.dataset, run.seed)


def _cell_of(run_dir: str) -> Cell:
    meta = read_run_meta(run_dir)
    return (meta.get('model'), meta.get('arm'), meta.get('dataset'),
            meta.get('seed'))


def table_run_dirs(grid: GridSpec, planned_dirs: Dict[Cell, str],
                   work_dir: str) -> List[str]:
    """The run dirs ``results.csv`` lists, in the grid's order.

    Args:
        grid: The grid.
        planned_dirs: The run dir of each cell this invocation planned.
        work_dir: The grid's work dir.
    """
    before = {}
    for run_dir in listed_run_dirs(work_dir) if osp.isfile(
            osp.join(work_dir, MANIFEST)) else []:
        if osp.isfile(osp.join(run_dir, 'run.json')):
            before.setdefault(_cell_of(run_dir), run_dir)
    names = os.listdir(work_dir) if osp.isdir(work_dir) else []
    out = []
    for run in grid.expand():
        key = cell(run)
        if key in planned_dirs:
            out.append(planned_dirs[key])
        elif key in before:
            out.append(before[key])
        else:
            prefix = run_dir_name(*key, run_id='')
            on_disk = [osp.join(work_dir, n) for n in names
                       if n.startswith(prefix)
                       and osp.isfile(osp.join(work_dir, n, 'run.json'))]
            if len(on_disk) == 1:
                out.append(on_disk[0])
    return out


def grid_completion(run_dirs: Dict[str, str]) -> Tuple[int, str]:
    """Exit status and summary line for the runs of one invocation.

    Args:
        run_dirs: Run label -> run dir.

    Returns:
        0 and ``grid complete: ...`` when every run is finished; 1 and a
        line naming the failed and unfinished runs otherwise.
    """
    by_status: Dict[str, List[str]] = {}
    for label, run_dir in run_dirs.items():
        by_status.setdefault(run_status(run_dir), []).append(label)
    if set(by_status) <= {'finished'}:
        return 0, f'grid complete: all {len(run_dirs)} run(s) finished'

    def some(labels: List[str]) -> str:
        more = f' and {len(labels) - 3} more' if len(labels) > 3 else ''
        return ', '.join(labels[:3]) + more

    parts = []
    if by_status.get('failed'):
        parts.append(f'{len(by_status["failed"])} failed '
                     f'({some(by_status["failed"])}; --retry-failed runs '
                     f'them again)')
    unfinished = [label for s in ('interrupted', 'pending', 'damaged')
                  for label in by_status.get(s, [])]
    if unfinished:
        parts.append(f'{len(unfinished)} not finished ({some(unfinished)}; '
                     f'the same command resumes them)')
    return 1, (f'grid incomplete: {", ".join(parts)}; '
               f'{len(by_status.get("finished", []))} of {len(run_dirs)} '
               f'finished')
