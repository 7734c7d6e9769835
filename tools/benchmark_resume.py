"""How long a resumed run takes to start training again (issue 35, item 3).

    .venv/bin/python tools/benchmark_resume.py                # k = 10 200 800
    .venv/bin/python tools/benchmark_resume.py --ks 10 200 --coco-k 80000

For each k, tiny Mask R-CNN on the built-in set (the smoke grid's: 64
images of 128 px, batch 4, ``num_workers=0``) is resumed from a checkpoint
at iteration k, once with mmengine's ``IterBasedTrainLoop`` (which loads
the k batches already trained on) and once with
``ResumableIterBasedTrainLoop``, each in a fresh process. The checkpoint is
one trained for 2 iterations, its iteration set to k (the weights do not
change what a resume has to skip). Printed per run: seconds from the
process's start to the first training iteration, and from the loaded
checkpoint (``before_train``) to that iteration, where the skipping is.

With ``../shared/datasets/coco128-seg`` it also times COCO's training
pipeline (mmdet's ``coco_instance``: load, masks, resize to 1333 x 800,
flip) per image, and the resumable loop's index-only positioning at
``--coco-k`` iterations of 2 images on those annotations, for the
extrapolation to a COCO run.
"""
import argparse
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

CONFIG = 'configs/mask_rcnn/mask-rcnn_r18-tiny_fpn_builtin.py'
LOOPS = ('IterBasedTrainLoop', 'ResumableIterBasedTrainLoop')
SMOKE_BUILTIN = dict(num_train=64, num_val=16, image_size=128,
                     num_classes=3, size_mix=dict(small=0.4, medium=0.4,
                                                  large=0.2), seed=0)
COCO_TRAIN = 118287   # train2017 images
COCO128 = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), '..',
                   'shared', 'datasets', 'coco128-seg')


def _config(work_dir: str, max_iters: int, loop: str):
    from mmengine.config import Config

    from experiments.data.prepare import prepare_dataset
    from experiments.grid.run_config import set_dataset
    from experiments.grid.spec import DatasetSpec
    from experiments.store import project_path
    cfg = Config.fromfile(project_path(CONFIG))
    set_dataset(cfg, prepare_dataset(
        DatasetSpec(name='builtin', synthetic=SMOKE_BUILTIN), verbose=False))
    cfg.work_dir = work_dir
    cfg.train_cfg.type = loop
    cfg.train_cfg.max_iters = max_iters
    cfg.default_hooks.checkpoint.interval = 2
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.randomness = dict(seed=0)
    return cfg


def child(work_dir: str, k: int, loop: str, started: float) -> None:
    """Resume ``work_dir`` at k; print the timings as JSON, train nothing."""
    from mmengine.hooks import Hook
    from mmengine.registry import RUNNERS

    import mmdet_plugins  # noqa: F401
    times = dict(imported=time.time() - started)

    class Stop(Exception):
        pass

    class Clock(Hook):
        priority = 'HIGHEST'

        def before_train(self, runner):
            times['resumed'] = time.time() - started

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            times['first_iteration'] = time.time() - started
            raise Stop

    cfg = _config(work_dir, k + 1, loop)
    cfg.resume = True
    runner = RUNNERS.build(cfg)
    runner.register_hook(Clock())
    try:
        runner.train()
    except Stop:
        pass
    times['skip_s'] = times['first_iteration'] - times['resumed']
    print(json.dumps(times))


def _checkpoint_at(base: str, dst: str, k: int) -> None:
    """``base`` (trained to 2) as if it had stopped at iteration k."""
    import torch
    shutil.copytree(base, dst)
    ckpt = torch.load(osp.join(dst, 'iter_2.pth'), weights_only=False)
    ckpt['meta']['iter'] = k
    torch.save(ckpt, osp.join(dst, f'iter_{k}.pth'))
    rng = osp.join(dst, 'rng_states')
    state = torch.load(osp.join(rng, 'iter_2.rank0.pth'), weights_only=True)
    state.update(step=k, iter=k)
    torch.save(state, osp.join(rng, f'iter_{k}.rank0.pth'))
    with open(osp.join(dst, 'last_checkpoint'), 'w') as f:
        f.write(osp.join(dst, f'iter_{k}.pth'))


def _resume_times(root: str, ks, loops) -> list:
    from mmengine.registry import RUNNERS

    import mmdet_plugins  # noqa: F401
    base = osp.join(root, 'base')
    RUNNERS.build(_config(base, 2, LOOPS[1])).train()
    rows = []
    for k in ks:
        for loop in loops:
            work_dir = osp.join(root, f'{loop}_{k}')
            _checkpoint_at(base, work_dir, k)
            started = time.time()
            out = subprocess.run(
                [sys.executable, osp.abspath(__file__), '--child', work_dir,
                 str(k), loop, repr(started)],
                capture_output=True, text=True, check=True)
            times = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(dict(k=k, loop=loop, **times))
            first, skip = times['first_iteration'], times['skip_s']
            print(f'k={k:5d} {loop:28s} start-up {first:7.1f} s, of which '
                  f'skipping the data {skip:6.2f} s', flush=True)
            shutil.rmtree(work_dir)
    return rows


def _coco(root: str, k: int) -> dict:
    """COCO's pipeline per image and the positioning at k iterations."""
    from mmdet.registry import DATASETS
    from mmdet.utils import register_all_modules
    from mmengine.dataset import DefaultSampler

    from mmdet_plugins.engine.resumable_loop import ResumableBatchSampler
    register_all_modules()
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
        dict(type='Resize', scale=(1333, 800), keep_ratio=True),
        dict(type='RandomFlip', prob=0.5),
        dict(type='PackDetInputs')]
    dataset = DATASETS.build(dict(
        type='CocoDataset', data_root=root,
        ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='images/train2017/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
        pipeline=pipeline))
    n = len(dataset)
    dataset[0]
    started = time.perf_counter()
    for i in range(n):
        dataset[i]
    per_image = (time.perf_counter() - started) / n
    started = time.perf_counter()
    for _ in range(10):
        for i in range(n):
            dataset.get_data_info(i)
    info_s = (time.perf_counter() - started) / (10 * n)
    sampler = ResumableBatchSampler(
        DefaultSampler(dataset, shuffle=True, seed=0), 2,
        dict(type='AspectRatioBatchSampler'))
    started = time.perf_counter()
    sampler.position(k)
    positioning = time.perf_counter() - started
    # On COCO each of the 118k images' sizes is read once more than here.
    coco = positioning + (min(COCO_TRAIN, 2 * k) - n) * info_s
    return dict(images=n, load_s_per_image=per_image, info_s=info_s,
                positioning_k=k, positioning_s=positioning,
                coco_positioning_s=coco)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == '--child':
        child(sys.argv[2], int(sys.argv[3]), sys.argv[4],
              float(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--ks', type=int, nargs='+', default=[10, 200, 800])
    parser.add_argument('--loops', nargs='+', default=list(LOOPS),
                        choices=LOOPS)
    parser.add_argument('--coco-k', type=int, default=80000)
    parser.add_argument('--coco128', default=COCO128)
    parser.add_argument('--coco-only', action='store_true',
                        help='only the coco128-seg figures')
    parser.add_argument('--out', help='write the figures here (JSON)')
    args = parser.parse_args()
    result = {}
    if not args.coco_only:
        root = tempfile.mkdtemp(prefix='benchmark_resume_')
        try:
            result['resumes'] = _resume_times(root, args.ks, args.loops)
        finally:
            shutil.rmtree(root, ignore_errors=True)
    if osp.isfile(osp.join(args.coco128, 'annotations',
                           'instances_train2017.json')):
        coco = _coco(args.coco128, args.coco_k)
        result['coco128'] = coco
        images = args.coco_k * 2
        print(f'coco128-seg ({coco["images"]} images, COCO pipeline): '
              f'{coco["load_s_per_image"] * 1000:.1f} ms per image in one '
              f'process; replaying {args.coco_k} iterations x 2 images = '
              f'{images} images: {images * coco["load_s_per_image"]:.0f} s '
              f'in one process; positioning at {args.coco_k}: '
              f'{coco["positioning_s"]:.1f} s here, '
              f'{coco["coco_positioning_s"]:.1f} s on COCO\'s {COCO_TRAIN} '
              f'images ({coco["info_s"] * 1e6:.0f} us per image size)')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=1)


if __name__ == '__main__':
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    main()
