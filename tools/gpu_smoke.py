"""The first hour on a GPU machine: does every family train on CUDA as on CPU?

    bash tools/setup_env.sh            # with your CUDA torch installed first
    python tools/gpu_smoke.py          # or: make gpu-smoke
    python tools/gpu_smoke.py --images-per-step 1 --compare-steps 1  # quick

Steps, one table row each (``<work-dir>/gpu_smoke.md``):

1. the stack: torch and its CUDA build, the visible GPUs, mmcv's compiled
   ops and whether they were compiled with CUDA;
2. mmcv's CUDA kernels against its CPU ones (``RoIAlign``, ``nms``) on the
   same inputs;
3. per family (CenterMask R-50, CenterMask V2, CenterMask-Lite, RetinaMask,
   Mask R-CNN), its COCO config through ``run_grid.py`` on coco128-seg:
   ``--compare-steps`` optimizer steps on CPU (the reference, same seed),
   then ``--steps`` on 1 GPU and on 2 GPUs (NCCL), at the config's recipe
   total batch (or ``--images-per-step``); the first steps' losses compared
   with the CPU run's, seconds per iteration and images per second.

Whatever this machine cannot do is a row that says ``skipped`` and why (no
CUDA torch, one GPU, no coco128-seg); the CPU parts run everywhere. Initial
weights not in the cache are replaced by random initialisation (CPU and GPU
alike, so the comparison holds). Exit status 1 when a step that ran failed.
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
from typing import Dict, List, Optional

import pandas as pd
import torch

PROJECT = osp.dirname(osp.dirname(osp.abspath(__file__)))
# The project's modules are imported where they are used, after this.
if PROJECT not in sys.path:
    sys.path.insert(0, PROJECT)

FAMILIES = {
    'CenterMask R-50': 'configs/centermask/centermask_r50_fpn_1x_coco.py',
    'CenterMask V2-39': 'configs/centermask/centermask_v2-39_fpn_1x_coco.py',
    'CenterMask-Lite V-19':
        'configs/centermask/centermask-lite_v-19_fpn_ms-4x_coco.py',
    'RetinaMask R-50': 'configs/retinamask/retinamask_r50_fpn_1x_coco.py',
    'Mask R-CNN R-50': 'configs/mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
}
COCO128 = osp.join(osp.dirname(PROJECT), 'shared', 'datasets', 'coco128-seg')
# Step-1 loss, CPU vs CUDA: TF32 convolutions and other kernels round
# differently; beyond this the CUDA path computes something else.
LOSS_RTOL = 2e-2


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/gpu_smoke')
    parser.add_argument('--data-root', default=COCO128)
    parser.add_argument('--families', nargs='+', default=list(FAMILIES),
                        choices=list(FAMILIES))
    parser.add_argument('--steps', type=int, default=50,
                        help='optimizer steps each GPU run trains')
    parser.add_argument('--compare-steps', type=int, default=2,
                        help='optimizer steps of the CPU reference, whose '
                             'losses the GPU runs are compared with')
    parser.add_argument('--images-per-step', type=int, default=None,
                        help="images per optimizer step (default: each "
                             "config's recipe total batch)")
    parser.add_argument('--val-images', type=int, default=8)
    return parser.parse_args(argv)


def stack_row() -> Dict[str, str]:
    """What torch and mmcv were built with and what they see."""
    from mmcv.ops import get_compiling_cuda_version
    cuda = torch.cuda.is_available()
    gpus = [torch.cuda.get_device_name(i)
            for i in range(torch.cuda.device_count())] if cuda else []
    mmcv_cuda = get_compiling_cuda_version()
    result = (f'torch {torch.__version__} (CUDA build: {torch.version.cuda}); '
              f'{len(gpus)} GPU(s) {", ".join(sorted(set(gpus)))}; '
              f'mmcv ops compiled with CUDA: {mmcv_cuda}')
    if not cuda:
        return dict(step='stack', status='ok (CPU only)', result=result)
    ok = mmcv_cuda != 'not available'
    return dict(step='stack', status='ok' if ok else 'FAILED',
                result=result + ('' if ok else ': rebuild mmcv with '
                                 'FORCE_CUDA=1 (tools/setup_env.sh)'))


def mmcv_kernels_row() -> Dict[str, str]:
    """mmcv's CUDA RoIAlign and nms against its CPU ones."""
    if not torch.cuda.is_available():
        return dict(step='mmcv CUDA kernels', status='skipped',
                    result='no CUDA device (torch.cuda.is_available() is '
                           'False)')
    from mmcv.ops import RoIAlign, nms
    gen = torch.Generator().manual_seed(0)
    feats = torch.rand(2, 16, 50, 50, generator=gen)
    xy = torch.rand(64, 2, generator=gen) * 40
    rois = torch.cat([torch.randint(0, 2, (64, 1), generator=gen).float(),
                      xy, xy + 1 + torch.rand(64, 2, generator=gen) * 9], 1)
    align = RoIAlign((7, 7), 1.0, sampling_ratio=0, aligned=True)
    ref = align(feats, rois)
    got = align(feats.cuda(), rois.cuda()).cpu()
    boxes, scores = rois[:, 1:], torch.rand(64, generator=gen)
    keep_cpu = nms(boxes, scores, 0.5)[1]
    keep_gpu = nms(boxes.cuda(), scores.cuda(), 0.5)[1].cpu()
    diff = float((ref - got).abs().max())
    same = torch.equal(keep_cpu, keep_gpu)
    ok = diff < 1e-4 and same
    return dict(step='mmcv CUDA kernels', status='ok' if ok else 'FAILED',
                result=f'RoIAlign max |CUDA - CPU| {diff:.2e}; nms keeps '
                       f'the same boxes: {same}')


def run_family_grid(name: str, configs: List[str], args, steps: int,
                    env: Dict[str, str], extra: List[str]) -> str:
    """Train ``configs`` for ``steps`` optimizer steps through run_grid.py;
    return the grid's work dir."""
    from experiments.grid.check_grids import write_check_grid
    work_dir = osp.abspath(osp.join(args.work_dir, name))
    os.makedirs(work_dir, exist_ok=True)
    grid = write_check_grid(
        'gpu_smoke', work_dir, configs, args.data_root, args.val_images,
        {'default_hooks.logger.interval': 1,
         'allow_untrained_frozen_backbone': True},
        model_overrides={c: steps_overrides(c, steps, args.images_per_step)
                         for c in configs},
        total_batch=args.images_per_step)
    subprocess.run([sys.executable, osp.join(PROJECT, 'experiments',
                                             'run_grid.py'), grid,
                    '--random-init-missing-weights', *extra],
                   cwd=PROJECT, env=env)
    return work_dir


def steps_overrides(config: str, steps: int,
                    images_per_step: Optional[int]) -> Dict[str, object]:
    """``steps`` optimizer steps of ``config`` (an epoch-based loop: that
    many epochs of one total batch each), score thresholds 0."""
    from experiments.grid.check_grids import one_step_overrides
    found = one_step_overrides(config, images_per_step)
    key = 'train_cfg.max_iters' if 'train_cfg.max_iters' in found \
        else 'train_cfg.max_epochs'
    found[key] = steps
    return found


def run_summary(work_dir: str, config: str) -> Optional[dict]:
    """Status, per-step losses and seconds per iteration of one run."""
    from analysis.sections.training_curves import read_scalars
    from experiments.grid.check_grids import model_name
    path = osp.join(work_dir, 'results.csv')
    if not osp.exists(path):
        return None
    results = pd.read_csv(path)
    hit = results[results['model'] == model_name(config)]
    if not len(hit):
        return None
    row = hit.iloc[-1]
    scalars = read_scalars(osp.join(work_dir, str(row['work_dir'])))
    train = scalars[scalars['loss'].notna()] if 'loss' in scalars else \
        scalars.iloc[:0]
    return dict(status=row['status'],
                error=row['error'] if isinstance(row['error'], str) else '',
                losses=list(train['loss']),
                s_per_iter=float(train['time'].iloc[1:].mean())
                if len(train) > 1 else float('nan'),
                images_per_process=int(row['images_per_process']),
                placement=f"{int(row['world_size'])} x "
                          f"{int(row['images_per_process'])} x "
                          f"{int(row['accumulation'])}")


def compare(ref: Optional[dict], got: Optional[dict], k: int) -> str:
    """The first ``k`` step losses of ``got`` against the CPU's."""
    if not ref or not ref['losses']:
        return 'no CPU reference'
    n = min(k, len(ref['losses']), len(got['losses']))
    rel = [abs(a - b) / max(abs(a), 1e-12)
           for a, b in zip(ref['losses'][:n], got['losses'][:n])]
    return f'step loss vs CPU, rel. diff over {n} step(s): ' + ', '.join(
        f'{r:.1e}' for r in rel) + ('' if rel[0] <= LOSS_RTOL else
                                    f' (step 1 > {LOSS_RTOL})')


def family_rows(args) -> List[Dict[str, str]]:
    configs = [FAMILIES[f] for f in args.families]
    if not osp.isdir(args.data_root):
        return [dict(step='training', status='skipped',
                     result=f'{args.data_root}: no coco128-seg')]
    cpu_env = dict(os.environ, CUDA_VISIBLE_DEVICES='')
    cpu_dir = run_family_grid('cpu', configs, args, args.compare_steps,
                              cpu_env, [])
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    variants = [('1 GPU', 1, ['--gpus', '0']),
                ('2 GPUs (NCCL)', 2, ['--gpus', '0,1',
                                      '--processes-per-run', '2'])]
    gpu_dirs = {}
    for label, need, extra in variants:
        if gpus >= need:
            gpu_dirs[label] = run_family_grid(
                label.split()[0] + 'gpu', configs, args, args.steps,
                dict(os.environ), extra)
    rows = []
    for family, config in zip(args.families, configs):
        ref = run_summary(cpu_dir, config)
        rows.append(_row(family, 'CPU reference', ref, None, args))
        for label, need, _ in variants:
            if label not in gpu_dirs:
                rows.append(dict(
                    step=f'{family}, {label}', status='skipped',
                    result=f'{gpus} GPU(s) visible, {need} needed'))
                continue
            rows.append(_row(family, label,
                             run_summary(gpu_dirs[label], config), ref,
                             args))
    return rows


def _row(family: str, label: str, got: Optional[dict], ref: Optional[dict],
         args) -> Dict[str, str]:
    step = f'{family}, {label}'
    if not got:
        return dict(step=step, status='FAILED', result='no results row')
    if got['status'] != 'finished':
        return dict(step=step, status='FAILED', result=got['error'][:300])
    images_s = got['images_per_process'] / got['s_per_iter'] \
        if got['s_per_iter'] == got['s_per_iter'] else float('nan')
    result = (f"placement {got['placement']}; {len(got['losses'])} step "
              f"loss(es), first {got['losses'][:1]}; "
              f"{got['s_per_iter']:.3f} s/iteration, {images_s:.1f} "
              f"images/s per process")
    status = 'ok'
    if ref is not None:
        said = compare(ref, got, args.compare_steps)
        result += '; ' + said
        status = 'FAILED' if f'> {LOSS_RTOL}' in said else 'ok'
    return dict(step=step, status=status, result=result)


def main(argv=None) -> int:
    args = parse_args(argv)
    os.makedirs(args.work_dir, exist_ok=True)
    rows = [stack_row(), mmcv_kernels_row(), *family_rows(args)]
    table = pd.DataFrame(rows)
    md = table.to_markdown(index=False)
    with open(osp.join(args.work_dir, 'gpu_smoke.md'), 'w') as f:
        f.write(md + '\n')
    with open(osp.join(args.work_dir, 'gpu_smoke.json'), 'w') as f:
        json.dump(rows, f, indent=1)
    print(md)
    return 1 if (table['status'] == 'FAILED').any() else 0


if __name__ == '__main__':
    sys.exit(main())
