"""Qualitative pairs: the images where two arms differ most, side by side.

Per-image mask AP comes from the cached per-image matching
(:mod:`analysis.coco_eval.image_eval`, one image's weight 1, the rest 0).
For each arm compared with the dataset's first arm (seed 0 of each, or their
lowest seed), the images with the largest AP differences either way are
drawn: ground truth, then each arm's masks with their scores.
"""
import os.path as osp
from typing import Dict, List, Tuple

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from pycocotools import mask as mask_utils

from analysis.coco_eval.detections import load_detections
from analysis.coco_eval.image_eval import ImageEval
from analysis.report import Section, save_figure
from analysis.sections.provenance import gt_json
from experiments.store import (RUN_CONFIG, detections_file,
                               evaluation_gt_file, project_path)

PAIRS_PER_COMPARISON = 4
MAX_IMAGES = 2000  # per-image AP on at most this many images
SCORE_MIN = 0.3
MAX_DRAWN = 30


def per_image_ap(ev: ImageEval, img_ids: List[int]) -> np.ndarray:
    """AP of each image alone (NaN for an image without ground truth)."""
    index = {i: n for n, i in enumerate(ev.img_ids)}
    out = np.full(len(img_ids), np.nan)
    for n, img in enumerate(img_ids):
        w = np.zeros(ev.num_images)
        w[index[img]] = 1.0
        out[n] = ev.ap(w)
    return out


def _image_dir(run_dir: str) -> str:
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(run_dir, RUN_CONFIG),
                          import_custom_modules=False)
    ds = cfg.test_dataloader.dataset
    prefix = ds.get('data_prefix', {}).get('img', '')
    return project_path(osp.join(ds.get('data_root', ''), prefix))


def _draw(ax, image: np.ndarray, instances: List[Tuple[dict, str]],
          title: str) -> None:
    ax.imshow(image)
    overlay = np.zeros((*image.shape[:2], 4))
    for n, (seg, text) in enumerate(instances):
        m = mask_utils.decode(seg).astype(bool)
        colour = plt.cm.tab10(n % 10)
        overlay[m] = (*colour[:3], 0.45)
        ys, xs = np.nonzero(m)
        if text and xs.size:
            ax.text(xs.min(), ys.min(), text, fontsize=6, color='white',
                    bbox=dict(facecolor=colour, alpha=0.7, pad=0.5,
                              linewidth=0))
    ax.imshow(overlay)
    ax.set_title(title, fontsize=8)
    ax.axis('off')


def _gt_instances(gt: dict, img: dict, names: dict) -> List[Tuple[dict, str]]:
    out = []
    for ann in gt['anns'].get(img['id'], []):
        seg = ann['segmentation']
        if isinstance(seg, list):
            rles = mask_utils.frPyObjects(seg, img['height'], img['width'])
            seg = mask_utils.merge(rles)
        elif isinstance(seg.get('counts'), list):
            seg = mask_utils.frPyObjects(seg, img['height'], img['width'])
        out.append((seg, names.get(ann['category_id'], '')))
    return out


def _det_instances(dets: List[dict], names: dict) -> List[Tuple[dict, str]]:
    kept = sorted((d for d in dets if d['score'] >= SCORE_MIN),
                  key=lambda d: -d['score'])[:MAX_DRAWN]
    return [(d['segmentation'], f'{names.get(d["category_id"], "")} '
             f'{d["score"]:.2f}') for d in kept]


def _by_image(path: str) -> Dict[int, List[dict]]:
    by_image: Dict[int, List[dict]] = {}
    for d in load_detections(path):
        by_image.setdefault(d['image_id'], []).append(d)
    return by_image


def qualitative_section(df: pd.DataFrame, evals, out_dir: str) -> Section:
    """Figures of the images where each arm differs most from the first.

    Args:
        df: This grid's results.
        evals: The report's :class:`~analysis.coco_eval.run_eval.RunEvals`.
        out_dir: Where the figures go.
    """
    import cv2
    section = Section('Qualitative pairs: where two arms differ most', [])
    done = df[df.status == 'finished'].sort_values('seed')
    for dataset, runs in done.groupby('dataset', sort=False):
        firsts = [g.iloc[0] for _, g in runs.groupby(['model', 'arm'],
                                                     sort=False)]
        firsts = [r for r in firsts if evals.get(r, 'segm') is not None]
        if len(firsts) < 2:
            continue
        ref = firsts[0]
        ann = evaluation_gt_file(ref.work_dir)
        raw = gt_json(ann)
        names = {c['id']: c['name'] for c in raw['categories']}
        gt = dict(anns={})
        for a in raw['annotations']:
            gt['anns'].setdefault(a['image_id'], []).append(a)
        images = {im['id']: im for im in raw['images']}
        img_dir = _image_dir(ref.work_dir)
        ref_ev = evals.get(ref, 'segm')
        img_ids = ref_ev.img_ids[:MAX_IMAGES]
        ref_ap = per_image_ap(ref_ev, img_ids)
        ref_dets = _by_image(detections_file(ref.detections, 'segm'))
        for other in firsts[1:]:
            ap = per_image_ap(evals.get(other, 'segm'), img_ids)
            diff = ap - ref_ap
            order = [i for i in np.argsort(-np.abs(np.nan_to_num(diff)))
                     if diff[i] == diff[i]][:PAIRS_PER_COMPARISON]
            if not order:
                continue
            other_dets = _by_image(detections_file(other.detections,
                                                   'segm'))
            fig, axes = plt.subplots(len(order), 3, squeeze=False,
                                     figsize=(9, 3 * len(order)))
            for row, i in zip(axes, order):
                img = images[img_ids[i]]
                path = osp.join(img_dir, img['file_name'])
                image = cv2.imread(path)
                if image is None:
                    raise FileNotFoundError(f'{path}: validation image '
                                            f'missing (named in {ann})')
                image = image[:, :, ::-1]
                _draw(row[0], image, _gt_instances(gt, img, names),
                      f'ground truth: {img["file_name"]}')
                _draw(row[1], image, _det_instances(
                    ref_dets.get(img['id'], []), names),
                    f'{ref.model}/{ref.arm} seed {int(ref.seed)}: mask AP '
                    f'{100 * ref_ap[i]:.1f}')
                _draw(row[2], image, _det_instances(
                    other_dets.get(img['id'], []), names),
                    f'{other.model}/{other.arm} seed {int(other.seed)}: mask '
                    f'AP {100 * ap[i]:.1f}')
            name = (f'pairs_{ref.model}_{ref.arm}_vs_{other.model}_'
                    f'{other.arm}_{dataset}.png').replace('/', '-')
            section.figures.append(save_figure(fig, osp.join(out_dir, name),
                                               dpi=80))
            section.text.append(
                f'{other.model}/{other.arm} vs {ref.model}/{ref.arm} on '
                f'{dataset}: the {len(order)} of {len(img_ids)} validation '
                f'images with the largest per-image mask AP difference '
                f'(runs {ref.run_id} and {other.run_id}, weights '
                f'{ref.weights} / {other.weights}); detections with score '
                f'>= {SCORE_MIN}, at most {MAX_DRAWN} per image.')
    if not section.figures:
        section.text.append('Needs two finished arms with saved mask '
                            'detections on one dataset.')
    return section
