"""Before the first GPU-hour: every COCO config trains, evaluates and exports
on real COCO images, on this machine's CPU.

    python tools/check_coco_configs.py                 # all 20 COCO configs
    python tools/check_coco_configs.py --configs configs/retinamask/*_coco.py
    make check-coco                                    # the same, all configs

For every ``configs/*/*_coco*.py`` it writes one grid (one model per config,
the coco128-seg dataset, seed 0) and runs it through ``run_grid.py`` exactly
as a COCO grid runs: each config's own total batch placed on one CPU process
(gradient accumulation included), its own input size and training pipeline
(multi-scale included), one optimizer step (``train_cfg.max_iters=1``: one
step of the recipe's total batch), then the test of ``--val-images`` images
with the config's own evaluator. Each finished run is then exported to ONNX
and compared with PyTorch on ``--check-images`` images
(``tools/export_onnx.py``). Initial weights this machine cannot read (no
internet, nothing in the cache) are replaced by random initialisation
(``run_grid.py --random-init-missing-weights``), and the row says which.

One row per config: wall time, peak RSS, losses finite, detections written,
box/mask AP computed, exported (with parity), weights replaced, error.
Writes ``<work-dir>/check_coco.md`` and ``.csv``; exit status 1 when any row
failed. ``--images-per-step N`` trains N images instead of the recipe's total
batch (the slow test in ``make test`` uses it; the full check never does).
"""
import argparse
import glob
import json
import math
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Dict, List, Optional

import pandas as pd

# The project's modules are imported where they are used, after this.
PROJECT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if PROJECT not in sys.path:
    sys.path.insert(0, PROJECT)

COCO128 = osp.join(osp.dirname(PROJECT), 'shared', 'datasets', 'coco128-seg')
def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--configs', nargs='+', default=None,
                        help='configs to check (default: every '
                             'configs/*/*_coco*.py)')
    parser.add_argument('--work-dir', default='work_dirs/check_coco',
                        help='where the grid, its runs and the table go')
    parser.add_argument('--data-root', default=COCO128,
                        help='a COCO-format dataset with masks (default: '
                             'the shared coco128-seg)')
    parser.add_argument('--val-images', type=int, default=8,
                        help='images the test evaluates')
    parser.add_argument('--check-images', type=int, default=2,
                        help='images the ONNX parity check compares')
    parser.add_argument('--images-per-step', type=int, default=None,
                        help='train this many images in the one optimizer '
                             'step instead of the recipe total batch (the '
                             "config's LR; lr_scaling manual); for quick "
                             'checks only')
    parser.add_argument('--max-images-per-process', type=int, default=None,
                        help='images one process takes at once, the rest '
                             "gradient accumulation (default: the config's "
                             'batch size)')
    parser.add_argument('--no-export', action='store_true',
                        help='skip the ONNX export and parity check')
    parser.add_argument('--slots', type=int, default=1,
                        help='runs trained at once (run_grid.py --slots)')
    return parser.parse_args(argv)


def coco_configs() -> List[str]:
    """Every COCO config of the project, relative to the project root."""
    return sorted(osp.relpath(p, PROJECT) for p in
                  glob.glob(osp.join(PROJECT, 'configs', '*', '*_coco*.py')))


def write_grid(configs: List[str], args: argparse.Namespace,
               work_dir: str) -> str:
    """The check's grid file: one model per config, coco128, seed 0."""
    from experiments.grid.check_grids import (one_step_overrides,
                                             write_check_grid)
    # One optimizer step; every step's losses logged so the check sees
    # each of them (the configs log every 50 by default).
    # A frozen, BN-frozen backbone without its weights is refused at
    # planning; here the random one is the point (the row says so).
    return write_check_grid(
        'check_coco', work_dir, configs, args.data_root, args.val_images,
        {'default_hooks.logger.interval': 1,
         'allow_untrained_frozen_backbone': True},
        model_overrides={c: one_step_overrides(c, args.images_per_step)
                         for c in configs},
        total_batch=args.images_per_step,
        max_images_per_process=args.max_images_per_process)


def losses_finite(run_dir: str) -> Optional[bool]:
    """Whether every logged loss is finite (None: nothing logged)."""
    from analysis.sections.training_curves import read_scalars
    scalars = read_scalars(run_dir)
    cols = [c for c in scalars.columns if c == 'loss' or
            c.startswith('loss_')] if len(scalars) else []
    values = scalars[cols].to_numpy().ravel() if cols else []
    if not len(values):
        return None
    return bool(all(math.isfinite(float(v)) for v in values
                    if not pd.isna(v)))


def count_detections(run_dir: str, rel: str) -> int:
    """Detections the run's test wrote (box entries over its files)."""
    if not isinstance(rel, str) or not rel:
        return 0
    # results.csv keeps it relative to the work dir: <run dir>/detections.
    path = osp.join(run_dir, 'detections')
    n = 0
    for f in glob.glob(osp.join(path, '*.bbox.json')):
        with open(f) as fh:
            n += len(json.load(fh))
    return n


NOT_APPLICABLE = 'not applicable (box-only)'
WITHIN_NOISE = 'yes, parity within float32 noise (random init)'


def float32_noise(run_dir: str, ckpt: str) -> Dict[str, float]:
    """The run's model's own float32-vs-float64 gaps on the first test
    image: ``score_noise``
    (:func:`mmdet_plugins.export.float_noise.float32_score_noise`) and
    ``mask_prob_noise``, ``mask_score_noise`` (``float32_mask_noise``)."""
    import torch
    from mmengine.config import Config
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    import mmdet_plugins  # noqa: F401
    from mmdet_plugins.export.checkpoint import load_weights
    from mmdet_plugins.export.float_noise import (first_test_batch,
                                                  float32_mask_noise,
                                                  float32_score_noise)
    cfg = Config.fromfile(osp.join(run_dir, 'config.py'))
    model = MODELS.build(cfg.model)
    load_weights(model, ckpt, target=run_dir)
    batch = first_test_batch(model, cfg)
    with torch.no_grad():
        noise = float32_score_noise(model, batch['inputs'])
    return dict(score_noise=noise, **float32_mask_noise(
        model, batch['inputs'], batch['data_samples'], noise))


# What each measured noise excuses: the problem lines of
# ``parity.within_tolerance`` it accounts for, and the summary figure
# held to 2 x the noise. The scores' noise covers what follows from the
# scores (boxes, which detections make the list, box AP).
NOISE_EXCUSES = (
    ('score_noise', 'max_score_abs',
     ('max_box_abs', 'max_score_abs', 'bbox AP', 'images have detections')),
    ('mask_prob_noise', 'max_mask_prob_abs', ('max_mask_prob_abs', )),
    ('mask_score_noise', 'max_mask_score_abs', ('max_mask_score_abs', )),
)
# A noise whose double spans a quantity's whole range (a probability's: 1)
# would excuse any difference, a wrong graph's too: it excuses nothing,
# and the row says the parity cannot decide at these weights.
NOISE_RANGE = dict(score_noise=1.0, mask_prob_noise=1.0)


def saturated_noise(noise: dict) -> List[str]:
    """The noises of ``noise`` too large to excuse anything."""
    return [k for k, top in NOISE_RANGE.items()
            if 2 * noise.get(k, 0.0) >= top]


def judge_failed_parity(parity_file: str, noise) -> bool:
    """Is every problem of a failed parity within the model's own float32
    rounding (measured on the same image)? Each float32 runtime is about
    the noise from the float64 result, in its own direction, so two of
    them can be 2 x the noise apart: within that the parity cannot tell a
    wrong graph from rounding at these weights.

    Args:
        parity_file: The export's ``.parity.json``.
        noise: :func:`float32_noise`'s dict, or the score noise alone (a
            float: no mask problem is then excused).

    Binary mask flips that the mask probabilities do not explain
    (``mask_pixel_unexplained``) are never excused, nor is a raw
    ``max_mask_pixel_diff`` (a parity without the probabilities); the
    segm AP only when every mask figure is excused or within tolerance.
    """
    with open(parity_file) as f:
        parity = json.load(f)
    if not isinstance(noise, dict):
        noise = dict(score_noise=noise)
    summary, problems = parity['summary'], parity.get('problems', [])
    excused = set()
    for name, key, lines in NOISE_EXCUSES:
        if name in noise and name not in saturated_noise(noise) and \
                summary.get(key, math.inf) <= 2 * noise[name]:
            excused |= {p for p in problems if any(w in p for w in lines)}
    left = [p for p in problems if p not in excused]
    # The segm AP follows from the masks, their scores and the detections:
    # excused with them, once nothing else is left.
    if excused and all(p.startswith('segm AP') for p in left):
        left = []
    return not left and summary.get('mask_pixel_unexplained', 0) == 0


def export(run_dir: str, config: str, args: argparse.Namespace,
           out_dir: str, random_init: bool = False) -> Dict[str, str]:
    """Export the run's final checkpoint and compare it with PyTorch.

    A parity that fails for a randomly initialised model is judged against
    the model's own float32 rounding (:func:`judge_failed_parity`): a
    random deep network can be too ill-conditioned for float32 to decide.
    """
    from experiments.grid.check_grids import model_name
    from experiments.store import last_checkpoint_target
    ckpt = last_checkpoint_target(run_dir)
    if not ckpt:
        return {'exported': 'no', 'export_error': 'no checkpoint'}
    out = osp.join(out_dir, model_name(config) + '.onnx')
    proc = subprocess.run(
        [sys.executable, osp.join(PROJECT, 'tools', 'export_onnx.py'),
         osp.join(run_dir, 'config.py'), ckpt, '--out', out,
         '--check-images', str(args.check_images)],
        cwd=PROJECT, capture_output=True, text=True)
    status = {0: 'yes, parity ok', 1: 'yes, parity FAILED',
              2: 'unsupported'}.get(proc.returncode, 'FAILED')
    tail = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or ['']
    if proc.returncode == 2 and 'box-only detector' in tail[0]:
        # The exporter's own refusal: it exports instance segmentation
        # models, and a box-only baseline has nothing else to check.
        return {'exported': NOT_APPLICABLE, 'export_error': tail[0][:200]}
    row = {'exported': status,
           'export_error': '' if proc.returncode == 0 else tail[0][:200]}
    parity_file = out[:-len('.onnx')] + '.parity.json'
    if proc.returncode in (0, 1) and osp.isfile(parity_file):
        with open(parity_file) as f:
            summary = json.load(f)['summary']
        # The figures a verdict rests on, in every row (honest table).
        row.update({k: summary[k] for k in (
            'max_score_abs', 'max_mask_score_abs', 'max_mask_prob_abs',
            'mask_pixel_unexplained', 'max_mask_pixel_diff')
            if k in summary})
    if proc.returncode == 1 and random_init and osp.isfile(parity_file):
        noise = float32_noise(run_dir, ckpt)
        row['float32_noise'] = noise['score_noise']
        row.update({k: v for k, v in noise.items() if k != 'score_noise'})
        if judge_failed_parity(parity_file, noise):
            row['exported'] = WITHIN_NOISE
        elif saturated_noise(noise):
            row['export_error'] = (
                'undecidable at these weights: float32 noise '
                + ', '.join(f'{k} = {noise[k]:.3g}'
                            for k in saturated_noise(noise))
                + ' spans the range; ' + row['export_error'])[:300]
    return row


def table(work_dir: str, configs: List[str], args: argparse.Namespace,
          grid_stderr: str) -> pd.DataFrame:
    """One row per config from the grid's results and run dirs; a config
    with no row gets the lines of ``run_grid.py``'s refusal naming it."""
    from experiments.grid.check_grids import model_name
    results = pd.read_csv(osp.join(work_dir, 'results.csv')) \
        if osp.exists(osp.join(work_dir, 'results.csv')) else pd.DataFrame()
    rows = []
    for config in configs:
        name = model_name(config)
        hit = results[results['model'] == name] if len(results) else results
        row = {'config': config}
        if not len(hit):
            said = [line.strip() for line in grid_stderr.splitlines()
                    if name in line or config in line]
            row.update(status='not run', error=' '.join(said)[:300] or
                       'no row in results.csv: ' +
                       (grid_stderr.strip().splitlines() or [''])[-1])
            rows.append(row)
            continue
        r = hit.iloc[-1]
        run_dir = osp.join(work_dir, str(r['work_dir']))
        row.update(
            status=r['status'],
            placement=f"{int(r['world_size'])} x "
                      f"{int(r['images_per_process'])} x "
                      f"{int(r['accumulation'])}",
            wall_s=round(float(r['wall_time_s']), 1)
            if not pd.isna(r['wall_time_s']) else None,
            peak_rss_mb=r['peak_rss_mb'],
            losses_finite=losses_finite(run_dir),
            detections=count_detections(run_dir, r['detections']),
            box_AP=r.get('box_AP'), mask_AP=r.get('mask_AP'),
            weights=r['weights'],
            error=r['error'] if isinstance(r['error'], str) else '')
        if r['status'] == 'finished' and not args.no_export:
            started = time.perf_counter()
            row.update(export(run_dir, config, args,
                              osp.join(work_dir, 'exports'),
                              random_init='random init' in str(
                                  r['weights'])))
            row['export_s'] = round(time.perf_counter() - started, 1)
        rows.append(row)
    return pd.DataFrame(rows)


def failed(df: pd.DataFrame) -> pd.Series:
    """Rows that fail the check."""
    df = df.reindex(columns=sorted(set(df.columns) | {
        'losses_finite', 'detections', 'box_AP'}))
    bad = (df['status'] != 'finished') | (df['losses_finite'] != True)  # noqa: E712,E501
    bad |= ~(df['detections'].fillna(0) > 0)
    bad |= df['box_AP'].isna()
    if 'exported' in df:
        bad |= ~df['exported'].fillna('').isin(['yes, parity ok',
                                                NOT_APPLICABLE,
                                                WITHIN_NOISE])
    return bad


def main(argv=None) -> int:
    args = parse_args(argv)
    configs = args.configs or coco_configs()
    configs = [osp.relpath(osp.abspath(c), PROJECT) for c in configs]
    if not osp.isdir(args.data_root):
        print(f'{args.data_root}: no such dataset (coco128-seg is in the '
              'shared folder beside the project)', file=sys.stderr)
        return 2
    work_dir = osp.abspath(args.work_dir)
    os.makedirs(work_dir, exist_ok=True)
    grid = write_grid(configs, args, work_dir)
    proc = subprocess.run(
        [sys.executable, osp.join(PROJECT, 'experiments', 'run_grid.py'),
         grid, '--random-init-missing-weights', '--slots', str(args.slots)],
        cwd=PROJECT, stderr=subprocess.PIPE, text=True)
    sys.stderr.write(proc.stderr)
    df = table(work_dir, configs, args, proc.stderr)
    df['ok'] = ~failed(df)
    df.to_csv(osp.join(work_dir, 'check_coco.csv'), index=False)
    md = df.to_markdown(index=False)
    with open(osp.join(work_dir, 'check_coco.md'), 'w') as f:
        f.write(md + '\n')
    print(md)
    print(f'{int(df["ok"].sum())}/{len(df)} configs passed; '
          f'{osp.relpath(work_dir)}/check_coco.md')
    return 0 if df['ok'].all() else 1


if __name__ == '__main__':
    sys.exit(main())
