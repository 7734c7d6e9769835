"""How often the report's verdicts say "supported", simulated.

A statistical claim is tested by simulating the code that decides it:
each simulated grid builds per-image results of two arms with known noise
components (:mod:`uncertainty.noise`), and the verdict comes from
:func:`analysis.verdicts.judge` with the evidence of
:func:`analysis.evidence.paired_evidence` -- the report's own functions,
with AP replaced by a per-image mean so that a grid costs milliseconds.

One simulated grid, in AP points, with ``N`` images and ``n`` seeds per arm:

- image ``i`` has a base score ``y_i`` (shared by the arms) and a method
  difference ``d_i`` (what arm a changes on that image), SD
  ``image_sd * sqrt(N)``, so the image term of the effect is ``image_sd``;
- every run adds a run-wide offset (SD ``run_sd``) and, per image, a seed x
  image term (SD ``seed_image_sd * sqrt(N)``);
- a run's metric is the mean over its images, and a resample's is the
  draw-count-weighted mean.

The planner's power (:func:`uncertainty.power.power`) for the same noise is
set against the simulated rate.
"""
import dataclasses
import math
import multiprocessing
from typing import Iterable, List

import numpy as np
import pandas as pd

from analysis.evidence import paired_evidence
from analysis.verdicts import judge
from uncertainty.noise import Noise
from uncertainty.power import power

# The issue-34 setting: the planner's prior (seed SD 0.3 AP, image SD 0.2
# AP), COCO val's 5000 images scaled down to keep a grid cheap (the image
# term is held at 0.2 AP whatever N is).
SEED_SD = 0.3
IMAGE_SD = 0.2
MARGIN = 1.0
SPLITS = {'all run-wide': 1.0, 'half seed x image': 0.5}


@dataclasses.dataclass
class Cell:
    """One row of the calibration table."""

    kind: str
    effect: float
    n_seeds: int
    split: str
    margin: float = 0.0

    @property
    def null(self) -> bool:
        """A cell where "supported" is a false claim: no effect, or a
        small difference exactly at the margin."""
        return (self.kind == 'small_difference' and abs(self.effect)
                >= self.margin) or (self.kind != 'small_difference'
                                    and self.effect == 0)


def noise_for(split: str, n_images: int) -> Noise:
    run_fraction = SPLITS[split]
    return Noise(IMAGE_SD, SEED_SD * math.sqrt(run_fraction),
                 SEED_SD * math.sqrt(1 - run_fraction), n_images,
                 f'simulation, {split}')


def simulate_cell(cell: Cell, n_sims: int, n_images: int = 1000,
                  n_resamples: int = 200, seed: int = 0) -> float:
    """The share of ``n_sims`` simulated grids the report calls
    "supported"."""
    rng = np.random.default_rng(seed)
    noise = noise_for(cell.split, n_images)
    n = cell.n_seeds
    w = dict(claim='simulated', kind=cell.kind, metric='mask_AP',
             margin=cell.margin / 100,
             a=dict(grid='sim', model='m', arm='a'),
             b=dict(grid='sim', model='m', arm='b'))
    runs = pd.DataFrame(dict(
        grid='sim', model='m', arm=['a'] * n + ['b'] * n, dataset='sim',
        seed=list(range(n)) * 2, status='finished',
        run_id=[f'a{i}' for i in range(n)] + [f'b{i}' for i in range(n)],
        val_images=n_images, params=1.0, mask_AP=0.0))
    root = math.sqrt(n_images)
    supported = 0
    for _ in range(n_sims):
        base = rng.normal(40, 20, n_images)
        diff = cell.effect + rng.normal(0, noise.image_sd * root, n_images)
        per_image = {}
        for arm, mean in (('a', base + diff), ('b', base)):
            for s in range(n):
                per_image[f'{arm}{s}'] = (
                    mean + rng.normal(0, noise.run_sd)
                    + rng.normal(0, noise.seed_image_sd * root, n_images))
        runs['mask_AP'] = [per_image[r].mean() / 100 for r in runs.run_id]

        def evidence(a_runs, b_runs, metric):
            return paired_evidence(
                [per_image[r] for r in a_runs.run_id],
                [per_image[r] for r in b_runs.run_id], n_images,
                _mean_value, n_resamples, noise)

        supported += judge('S', w, runs, evidence).verdict == 'supported'
    return supported / n_sims


def _mean_value(x: np.ndarray, counts):
    if counts is None:
        return x.mean()
    return counts @ x / x.size


def planned_power(cell: Cell, n_images: int = 1000) -> float:
    """The planner's probability of "supported" for the cell."""
    return power(cell.kind, cell.effect, noise_for(cell.split, n_images),
                 cell.n_seeds, cell.margin)


def issue_cells(seeds: Iterable[int] = (1, 3, 5),
                splits: Iterable[str] = tuple(SPLITS)) -> List[Cell]:
    """The cells issue 34 asks for."""
    cells = []
    for split in splits:
        for n in seeds:
            cells += [Cell('greater', 0.0, n, split),
                      Cell('less', 0.0, n, split),
                      Cell('small_difference', MARGIN, n, split, MARGIN),
                      Cell('greater', 0.5, n, split),
                      Cell('greater', 1.0, n, split)]
    return cells


def calibration_table(cells: List[Cell], n_sims: int, n_images: int = 1000,
                      n_resamples: int = 200,
                      first_seed: int = 0) -> pd.DataFrame:
    """Simulated "supported" rate beside the planner's power, per cell
    (cell ``k`` simulated with seed ``first_seed + k``)."""
    rows = []
    for k, cell in enumerate(cells):
        rate = simulate_cell(cell, n_sims, n_images, n_resamples,
                             seed=first_seed + k)
        rows.append(dict(kind=cell.kind, effect=cell.effect,
                         margin=cell.margin, seeds=cell.n_seeds,
                         split=cell.split,
                         planned=planned_power(cell, n_images),
                         supported=rate, null=cell.null))
    return pd.DataFrame(rows)


FALSE_SUPPORTED_MAX = 0.035
POWER_TOLERANCE = 0.03


def _table_of_one(job) -> pd.DataFrame:
    cell, n_sims, n_images, n_resamples, k = job
    return calibration_table([cell], n_sims, n_images, n_resamples,
                             first_seed=k)


def run_cells(cells: List[Cell], n_sims: int, n_images: int = 1000,
              n_resamples: int = 200, workers: int = 1) -> pd.DataFrame:
    """:func:`calibration_table` of every cell (cell ``k`` with seed
    ``k``, so the table does not depend on ``workers``), each row marked
    with its goal (issue 34) and whether it is met."""
    jobs = [(c, n_sims, n_images, n_resamples, k)
            for k, c in enumerate(cells)]
    if workers > 1:
        with multiprocessing.get_context('spawn').Pool(workers) as pool:
            parts = pool.map(_table_of_one, jobs)
    else:
        parts = [_table_of_one(j) for j in jobs]
    table = pd.concat(parts, ignore_index=True)
    null = table.null.astype(bool)
    table['goal'] = ['supported <= 3.5%' if n else 'planned +- 0.03'
                     for n in null]
    table['met'] = ((null & (table.supported <= FALSE_SUPPORTED_MAX))
                    | (~null & ((table.supported - table.planned).abs()
                                <= POWER_TOLERANCE)))
    return table
