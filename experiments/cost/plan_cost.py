"""Wall time and device-hours of planned runs, before they train.

A run's estimate is::

    wall = setup_s + iterations x s_per_iter + evaluations x val_images x
           eval_s_per_image / processes
    device-hours = wall x processes / 3600

``iterations`` are the run's loop iterations after its batch placement
(micro-batches: accumulation multiplies them,
``experiments/grid/batch_recipe.py``),
or, for epoch schedules, epochs x train images / (processes x images per
process). ``s_per_iter`` is per process at the rate's images per process and
is scaled linearly to the run's (an approximation: a GPU is faster per image
at larger batches, so a smaller batch is underestimated); processes are
assumed to scale weakly (each keeps its per-process time).

The rate comes from a probe (:func:`probe`: the run's own config and data
pipeline trained a few iterations on this machine, start-up excluded from
the per-iteration time and kept as ``setup_s``) or from the table
``experiments/cost/iteration_rates.csv``, each row with its source.
"""
import csv
import dataclasses
import json
import os
import os.path as osp
import subprocess
import sys
import tempfile
from typing import List, Optional

from experiments.store import PROJECT_ROOT, schedule_length

RATES = osp.join(osp.dirname(osp.abspath(__file__)), 'iteration_rates.csv')
FIELDS = ('config', 'device', 'processes', 'images_per_process',
          's_per_iter', 'setup_s', 'eval_s_per_image', 'peak_mem_mb',
          'source')


@dataclasses.dataclass
class Rate:
    """Measured speed of one config on one device.

    Attributes:
        config: Config path (project-relative).
        device: Device name (``NVIDIA V100``, a CPU model with threads).
        processes: Processes the rate was measured with.
        images_per_process: Images per process per iteration.
        s_per_iter: Seconds per training iteration, start-up excluded.
        setup_s: Start-up before the first iteration (0: unknown).
        eval_s_per_image: Seconds per validation image (inference and
            evaluation), per process.
        peak_mem_mb: Peak memory per process (NaN: unknown).
        source: Where the numbers come from.
    """

    config: str
    device: str
    processes: int
    images_per_process: int
    s_per_iter: float
    setup_s: float
    eval_s_per_image: float
    peak_mem_mb: float
    source: str


def load_rates(path: str = RATES) -> List[Rate]:
    if not osp.isfile(path):
        return []
    with open(path, newline='') as f:
        return [Rate(r['config'], r['device'], int(r['processes']),
                     int(r['images_per_process']), float(r['s_per_iter']),
                     float(r['setup_s'] or 0), float(r['eval_s_per_image']
                                                     or 0),
                     float(r['peak_mem_mb'] or 'nan'), r['source'])
                for r in csv.DictReader(f)]


def save_rate(rate: Rate, path: str = RATES) -> None:
    """Append (or replace) the row of ``rate``'s config and device."""
    rows = [r for r in load_rates(path)
            if (r.config, r.device) != (rate.config, rate.device)]
    rows.append(rate)
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(FIELDS)
        for r in rows:
            w.writerow([getattr(r, k) for k in FIELDS])


def find_rate(rates: List[Rate], config: str,
              device: str) -> Optional[Rate]:
    """The table's rate for ``config`` on a device whose name contains
    ``device`` (case-insensitive), or None."""
    want = device.lower()
    for r in rates:
        if r.config == config and (want in r.device.lower()
                                   or r.device.lower() in want):
            return r
    return None


@dataclasses.dataclass
class RunCost:
    """Estimated cost of one planned run."""

    label: str
    config: str
    iterations: int
    processes: int
    images_per_process: int
    accumulation: int
    wall_s: float
    device_hours: float
    peak_mem_mb: float
    source: str


def evaluations(cfg) -> int:
    """Validation passes: the final test plus any during training."""
    loop = cfg.get('train_cfg') or {}
    last = loop.get('max_iters', loop.get('max_epochs', 1))
    interval = loop.get('val_interval', last)
    return 1 + (int(last // interval) if interval < last else 0)


def estimate(label: str, cfg, config: str, rate: Optional[Rate],
             train_images: int, val_images: int) -> RunCost:
    """The cost of one placed config at ``rate`` (NaN without a rate)."""
    place = cfg.get('placement') or {}
    procs = int(place.get('processes', 1))
    ipp = int(place.get('images_per_process',
                        cfg.train_dataloader.batch_size))
    iters = schedule_length(cfg, train_images)
    nan = float('nan')
    if rate is None:
        return RunCost(label, config, iters, procs, ipp,
                       int(place.get('accumulation', 1)), nan, nan, nan,
                       'no rate: run --probe')
    scale = ipp / rate.images_per_process
    wall = (rate.setup_s + iters * rate.s_per_iter * scale
            + evaluations(cfg) * val_images * rate.eval_s_per_image / procs)
    return RunCost(label, config, iters, procs, ipp,
                   int(place.get('accumulation', 1)), wall,
                   wall * procs / 3600, rate.peak_mem_mb * scale,
                   f'{rate.device}: {rate.source}')


def probe(cfg, config: str, iters: int, warmup: int = 2,
          eval_images: int = 50, threads: Optional[int] = None,
          device: str = 'cpu', timeout: float = 1800) -> Rate:
    """Train ``warmup + iters`` iterations of ``cfg`` (its own data
    pipeline) in a child process, as a run would, and time them.

    Nothing is written outside a temporary directory.

    Args:
        cfg: The run's resolved, placed config.
        config: Its config path (the rate's key).
        iters: Iterations timed after ``warmup``.
        threads: ``OMP_NUM_THREADS`` of the child (as the runner sets it).
        device: ``cpu`` or ``cuda``.
    """
    env = dict(os.environ)
    if device == 'cpu':
        env['CUDA_VISIBLE_DEVICES'] = ''
        if threads:
            env['OMP_NUM_THREADS'] = env['MKL_NUM_THREADS'] = str(threads)
    with tempfile.TemporaryDirectory(prefix='probe-') as tmp:
        cfg.dump(osp.join(tmp, 'config.py'))
        out = osp.join(tmp, 'rate.json')
        proc = subprocess.run(
            [sys.executable, '-m', 'experiments.cost.probe_rate', tmp,
             '--iters', str(iters), '--warmup', str(warmup),
             '--eval-images', str(eval_images), '--out', out],
            cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
            timeout=timeout)
        if proc.returncode or not osp.isfile(out):
            raise RuntimeError(f'probe of {config} failed:\n'
                               f'{proc.stderr[-2000:]}')
        with open(out) as f:
            m = json.load(f)
    place = cfg.get('placement') or {}
    return Rate(config, m['device'], int(place.get('processes', 1)),
                int(place.get('images_per_process',
                              cfg.train_dataloader.batch_size)),
                m['s_per_iter'], m['setup_s'], m['eval_s_per_image'],
                m['peak_mem_mb'],
                f'--probe {iters} iters after {warmup} warm-up, '
                f'{m["measured_at"]}')
