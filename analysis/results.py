"""Results tables into pandas: load, align with a grid, aggregate seeds."""
import math
from typing import List, Optional

import numpy as np
import pandas as pd
from scipy import stats

from experiments.store import COLUMNS, METRIC_COLUMNS, load_results_table

GROUP = ['model', 'arm', 'dataset']


def load_results(path: str) -> pd.DataFrame:
    """Read a ``results.csv`` written by ``run_grid.py``, with every column.

    A damaged table is rebuilt from its run dirs first (see
    :func:`experiments.store.load_results_table`).

    Raises:
        FileNotFoundError: naming the path.
        DamagedFileError: The table is damaged beyond rebuilding.
    """
    df = load_results_table(path)
    for column in COLUMNS:
        if column not in df.columns:
            df[column] = np.nan
    return df[COLUMNS]


UNFINISHED = 'started, not finished'


def with_expected(results: pd.DataFrame,
                  expected: Optional[pd.DataFrame]) -> pd.DataFrame:
    """Add a row for every expected run without a result: ``not run``, or
    ``started, not finished`` when ``expected`` has a ``started`` column
    that is true for it (a run dir exists: it is training, or was stopped
    and resumes with the same command).

    Args:
        results: The results table.
        expected: Columns model, arm, dataset, seed and optionally started
            (e.g. from a grid's expansion); None keeps ``results``.
    """
    if expected is None or expected.empty:
        return results
    keys = ['model', 'arm', 'dataset', 'seed']
    have = set(map(tuple, results[keys].astype(str).values))
    started = expected['started'] if 'started' in expected else \
        pd.Series(False, index=expected.index)
    missing = [(*row, bool(s)) for row, s in zip(
        expected[keys].itertuples(index=False), started)
        if tuple(map(str, row)) not in have]
    if not missing:
        return results
    extra = pd.DataFrame(missing, columns=keys + ['started'])
    extra['status'] = extra.pop('started').map(
        {True: UNFINISHED, False: 'not run'})
    return pd.concat([results, extra.reindex(columns=results.columns)],
                     ignore_index=True)


def ci95_halfwidth(values: np.ndarray) -> float:
    """Half-width of the t-based 95% interval of the mean; NaN for n < 2."""
    values = values[~np.isnan(values)]
    n = len(values)
    if n < 2:
        return float('nan')
    return float(stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / math.sqrt(n))


def summarize(df: pd.DataFrame,
              metrics: List[str] = METRIC_COLUMNS) -> pd.DataFrame:
    """One row per model/arm/dataset over finished seeds.

    Columns: ``status`` (e.g. ``3/3 finished``, ``not run``), ``n_seeds``,
    ``<metric>`` (mean), ``<metric>_ci`` (95% half-width over seeds, NaN
    with one seed), ``params``, ``iterations``, ``wall_time_s``,
    ``gflops``, ``latency_ms`` (means over the seeds that have them),
    ``latency_other_load`` (the most other processes used while one was
    timed, in cores), ``run_ids``.
    """
    out = []
    for key, group in df.groupby(GROUP, sort=False):
        done = group[group.status == 'finished']
        counts = group.status.value_counts()
        status = ', '.join(f'{n}/{len(group)} {s}' for s, n in counts.items())
        row = dict(zip(GROUP, key), status=status, n_seeds=len(done),
                   seeds=','.join(str(int(s)) for s in sorted(done.seed)),
                   run_ids=','.join(done.run_id.astype(str)),
                   weights='; '.join(sorted(set(
                       done.weights.dropna().astype(str))))
                   if 'weights' in done else '')
        for m in metrics:
            values = done[m].to_numpy(dtype=float)
            row[m] = float(np.nanmean(values)) if np.any(
                ~np.isnan(values)) else float('nan')
            row[f'{m}_ci'] = ci95_halfwidth(values)
        for m in ('params', 'iterations', 'wall_time_s', 'val_images',
                  'gflops', 'latency_ms'):
            # Cost is measured for one seed per arm by default.
            values = done[m].to_numpy(dtype=float)
            row[m] = (float(np.nanmean(values)) if np.any(~np.isnan(values))
                      else float('nan'))
        # The most CPU other processes used while a seed was timed.
        load = done.get('latency_other_load', pd.Series(dtype=float))
        load = load.to_numpy(dtype=float)
        row['latency_other_load'] = (float(np.nanmax(load)) if np.any(
            ~np.isnan(load)) else float('nan'))
        out.append(row)
    return pd.DataFrame(out)
