"""Time per-image COCO matching and image-bootstrap AP on a COCO-sized set.

    python tools/benchmark_bootstrap.py                 # 5000 images, 1000
    python tools/benchmark_bootstrap.py --images 500 --resamples 100

Builds a synthetic COCO val-sized set (80 categories, about 7 objects per
image, COCO-like size mix, 1 % of objects crowd regions) and two result sets
of up to 100 detections per image (perturbed ground truth plus false
positives): one scored as "box" and one as "mask". Both are matched with
bbox IoU: the cost of the bootstrap depends only on the number of
detections and matches, not on how their IoU was computed.

Prints, each in seconds and as a ratio to pycocotools measured in the same
run: the per-image matching (our compiled engine vs ``COCOeval.evaluate()``,
whose summary APs must agree within 1e-4), ``--resamples`` resamples of box
+ mask AP, the end-to-end figure (target <= 20 s on 2 cores), and a cached
rebuild (the report's path when nothing new was evaluated; target <= 2 s per
run).
"""
import argparse
import contextlib
import io
import json
import os
import os.path as osp
import sys
import tempfile
import time

import numpy as np
from pycocotools.coco import COCO

from analysis.coco_eval import eval_cache
from analysis.coco_eval.bootstrap import bootstrap_ap, estimate
from analysis.coco_eval.image_eval import evaluate_images
from analysis.coco_eval.run_eval import image_eval_for_run
from experiments.store import detections_file


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--images', type=int, default=5000)
    parser.add_argument('--resamples', type=int, default=1000)
    parser.add_argument('--categories', type=int, default=80)
    parser.add_argument('--max-dets', type=int, default=100)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--no-reference', action='store_true',
                        help='skip pycocotools (about 75 s at 5000 images)')
    return parser.parse_args(argv)


def synthetic_coco(n_images: int, n_cats: int, rng) -> COCO:
    images, anns = [], []
    for i in range(1, n_images + 1):
        images.append(dict(id=i, width=640, height=480,
                           file_name=f'{i:012d}.jpg'))
        for _ in range(rng.poisson(7.3)):
            side = float(np.exp(rng.uniform(np.log(8), np.log(400))))
            w, h = side * np.exp(rng.normal(0, 0.3, 2))
            x, y = rng.uniform(0, 640 - min(w, 600)), rng.uniform(
                0, 480 - min(h, 460))
            anns.append(dict(id=len(anns) + 1, image_id=i,
                             category_id=int(rng.integers(1, n_cats + 1)),
                             bbox=[x, y, w, h], area=w * h,
                             iscrowd=int(rng.random() < 0.01)))
    coco = COCO()
    coco.dataset = dict(images=images, annotations=anns, categories=[
        dict(id=c, name=f'c{c}') for c in range(1, n_cats + 1)])
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def detections(coco: COCO, n_cats: int, max_dets: int, noise: float,
               rng) -> list:
    dets = []
    for img_id in coco.getImgIds():
        kept = []
        for ann in coco.imgToAnns[img_id]:
            if rng.random() < 0.2:
                continue
            x, y, w, h = ann['bbox']
            dx, dy = rng.normal(0, noise, 2) * [w, h]
            kept.append(dict(image_id=img_id, category_id=ann['category_id'],
                             bbox=[x + dx, y + dy, w, h],
                             score=float(rng.uniform(0.3, 1.0))))
        for _ in range(max(0, int(rng.integers(20, max_dets + 1))
                           - len(kept))):
            w, h = rng.uniform(8, 200, 2)
            kept.append(dict(image_id=img_id,
                             category_id=int(rng.integers(1, n_cats + 1)),
                             bbox=[float(rng.uniform(0, 600)),
                                   float(rng.uniform(0, 440)), w, h],
                             score=float(rng.uniform(0.0, 0.6))))
        dets += kept[:max_dets]
    return dets


def _time(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main(argv=None) -> int:
    args = parse_args(argv)
    rng = np.random.default_rng(args.seed)
    coco = synthetic_coco(args.images, args.categories, rng)
    runs = {name: detections(coco, args.categories, args.max_dets, noise, rng)
            for name, noise in (('box', 0.08), ('mask', 0.12))}
    crowd = sum(a['iscrowd'] for a in coco.dataset['annotations'])
    print(f'{args.images} images, {len(coco.dataset["annotations"])} '
          f'objects ({crowd} crowd), {args.categories} categories; '
          + ', '.join(f'{k}: {len(v)} detections' for k, v in runs.items())
          + f'; {os.cpu_count()} CPU cores')
    # Compile once (numba caches it on disk), outside the timings.
    evaluate_images(coco, runs['box'][:50], 'bbox', engine='fast')

    evals, fast_s = _time(lambda: {
        name: [evaluate_images(coco, dets, 'bbox', engine='fast')]
        for name, dets in runs.items()})
    ref_s = None
    if not args.no_reference:
        ref, ref_s = _time(lambda: {
            name: evaluate_images(coco, dets, 'bbox', engine='pycocotools')
            for name, dets in runs.items()})
        worst = max(abs(evals[n][0].ap(area=a) - ref[n].ap(area=a))
                    for n in runs for a in ('all', 'small', 'medium',
                                            'large'))
        print(f'per-image matching, box + mask: {fast_s:.1f} s; pycocotools '
              f'evaluate() {ref_s:.1f} s ({ref_s / fast_s:.1f}x faster); '
              f'largest AP difference {worst:.1e} (parity bound 1e-4)')
    else:
        print(f'per-image matching, box + mask: {fast_s:.1f} s')
    samples, boot_s = _time(lambda: bootstrap_ap(
        evals, n_resamples=args.resamples, seed=args.seed))
    for name in evals:
        e = estimate(evals[name], samples[name])
        print(f'  {name} AP {100 * e.value:.2f} [{100 * e.lo:.2f}, '
              f'{100 * e.hi:.2f}] (95% bootstrap interval)')
    per_ap = 1000 * boot_s / (2 * args.resamples)
    print(f'{args.resamples} resamples of box + mask AP: {boot_s:.1f} s '
          f'({per_ap:.1f} ms per AP)')
    total = fast_s + boot_s
    vs = (f'; with pycocotools matching instead: {ref_s + boot_s:.1f} s '
          f'({(ref_s + boot_s) / total:.1f}x)' if ref_s else '')
    print(f'matching + resamples: {total:.1f} s (target <= 20 s on 2 '
          f'cores){vs}')

    with tempfile.TemporaryDirectory() as tmp:
        ann = osp.join(tmp, 'instances.json')
        with open(ann, 'w') as f:
            json.dump(coco.dataset, f)
        det_dir = osp.join(tmp, 'detections')
        os.makedirs(det_dir)
        det_file = detections_file(det_dir, 'bbox')
        with open(det_file, 'w') as f:
            json.dump(runs['box'], f)
        eval_cache.store(evals['box'][0], det_file, ann, 'bbox')
        eval_cache.forget_file_hashes()
        cached, cached_s = _time(lambda: image_eval_for_run(
            det_dir, ann, 'bbox', coco_gt=lambda: None))
        assert cached.ap() == evals['box'][0].ap()
        size = os.path.getsize(det_file) / 2**20
        print(f'cached rebuild of one run ({size:.0f} MB of detections '
              f'hashed, evaluation read back): {cached_s:.2f} s (target '
              f'<= 2 s per run)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
