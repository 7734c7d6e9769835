"""Time image-bootstrap AP on a COCO-sized result set.

    python reports/benchmark_bootstrap.py                 # 5000 images, 1000
    python reports/benchmark_bootstrap.py --images 500 --resamples 100

Builds a synthetic COCO val-sized set (80 categories, about 7 objects per
image, COCO-like size mix) and two result sets of up to 100 detections per
image (perturbed ground truth plus false positives): one scored as "box"
and one as "mask". Both are matched with pycocotools' bbox IoU: the cost of
the bootstrap depends only on the number of detections and matches, not on
how their IoU was computed. Prints the one-time matching time and the time
of ``--resamples`` resamples of box + mask AP, with the resulting interval.
"""
import argparse
import contextlib
import io
import os
import sys
import time

import numpy as np
from pycocotools.coco import COCO

from analysis.bootstrap import bootstrap_ap, estimate
from analysis.image_eval import evaluate_images


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--images', type=int, default=5000)
    parser.add_argument('--resamples', type=int, default=1000)
    parser.add_argument('--categories', type=int, default=80)
    parser.add_argument('--max-dets', type=int, default=100)
    parser.add_argument('--seed', type=int, default=0)
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
                             bbox=[x, y, w, h], area=w * h, iscrowd=0))
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


def main(argv=None) -> int:
    args = parse_args(argv)
    rng = np.random.default_rng(args.seed)
    coco = synthetic_coco(args.images, args.categories, rng)
    runs = {name: detections(coco, args.categories, args.max_dets, noise, rng)
            for name, noise in (('box', 0.08), ('mask', 0.12))}
    print(f'{args.images} images, {len(coco.dataset["annotations"])} '
          f'objects, {args.categories} categories; '
          + ', '.join(f'{k}: {len(v)} detections' for k, v in runs.items())
          + f'; {os.cpu_count()} CPU cores')
    t0 = time.perf_counter()
    evals = {name: [evaluate_images(coco, dets, 'bbox')]
             for name, dets in runs.items()}
    print(f'per-image matching (pycocotools evaluate, once per run): '
          f'{time.perf_counter() - t0:.1f} s')
    t0 = time.perf_counter()
    samples = bootstrap_ap(evals, n_resamples=args.resamples,
                           seed=args.seed)
    elapsed = time.perf_counter() - t0
    for name in evals:
        e = estimate(evals[name], samples[name])
        print(f'  {name} AP {100 * e.value:.2f} [{100 * e.lo:.2f}, '
              f'{100 * e.hi:.2f}] (95% bootstrap interval)')
    print(f'{args.resamples} resamples of box + mask AP: {elapsed:.1f} s '
          f'(target <= 60 s on 2 cores)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
