"""Grids the checking tools write: every config of a list on coco128-seg.

``tools/check_coco_configs.py`` (``make check-coco``) and
``tools/gpu_smoke.py`` run configs through ``run_grid.py`` exactly as a
user's grid would; this module writes those grid files: one model per
config (named by the config's file stem), the coco128-seg training images,
a test on the first ``n`` annotated images, seed 0.
"""
import json
import os.path as osp
from typing import Any, Dict, List, Optional

from mmengine.config import Config

import yaml

COCO128_ANN = 'annotations/instances_train2017.json'
COCO128_IMG = 'images/train2017/'


def model_name(config: str) -> str:
    """A config's model name in the grid: its file stem (run ids and
    ``--only model=...`` take it as is)."""
    return osp.splitext(osp.basename(config))[0]


def write_val_subset(data_root: str, n: int, out: str) -> str:
    """Write the first ``n`` annotated images of ``data_root``'s COCO file
    (ids in ascending order) with their annotations to ``out``."""
    with open(osp.join(data_root, COCO128_ANN)) as f:
        coco = json.load(f)
    keep = set(sorted({a['image_id'] for a in coco['annotations']})[:n])
    subset = dict(coco,
                  images=[i for i in coco['images'] if i['id'] in keep],
                  annotations=[a for a in coco['annotations']
                               if a['image_id'] in keep])
    with open(out, 'w') as f:
        json.dump(subset, f)
    return out


def write_check_grid(name: str, work_dir: str, configs: List[str],
                     data_root: str, val_images: int,
                     overrides: Dict[str, object],
                     model_overrides: Optional[Dict[str, dict]] = None,
                     total_batch: Optional[int] = None,
                     max_images_per_process: Optional[int] = None) -> str:
    """Write ``<work_dir>/<name>.yaml`` and return its path.

    Args:
        name: The grid's name.
        work_dir: The grid's work dir (absolute).
        configs: Config paths relative to the project root.
        data_root: A COCO-format dataset laid out as coco128-seg.
        val_images: Images the test evaluates (a subset file is written
            into ``work_dir``).
        overrides: The grid's overrides, applied to every run.
        model_overrides: Per config path, overrides of that model only.
        total_batch: Images per optimizer step with the config's own LR and
            schedule (``lr_scaling: manual``, said in the results row);
            None keeps each config's own recipe.
        max_images_per_process: Images one process takes at once (the rest
            is gradient accumulation); None: the config's batch size.
    """
    val_ann = write_val_subset(data_root, val_images,
                               osp.join(work_dir, f'val{val_images}.json'))
    grid = {
        'name': name,
        'work_dir': work_dir,
        'models': {model_name(c): {'config': c, 'overrides':
                                   (model_overrides or {}).get(c, {})}
                   for c in configs},
        'datasets': {'coco128': {
            'data_root': osp.abspath(data_root),
            'train_ann': COCO128_ANN, 'train_img': COCO128_IMG,
            'val_ann': val_ann, 'val_img': COCO128_IMG}},
        'seeds': [0],
        'overrides': dict(overrides),
    }
    if total_batch:
        grid.update(total_batch=total_batch, lr_scaling='manual')
    if max_images_per_process:
        grid['max_images_per_process'] = max_images_per_process
    path = osp.join(work_dir, f'{name}.yaml')
    with open(path, 'w') as f:
        yaml.safe_dump(grid, f, sort_keys=False)
    return path


def one_step_overrides(config: str,
                       images_per_step: Optional[int] = None
                       ) -> Dict[str, object]:
    """A config's overrides for the checks: one optimizer step, and every
    ``score_thr`` of its ``model.test_cfg`` set to 0.

    An iteration-based loop trains ``max_iters=1`` (one step of the total
    batch; accumulation multiplies it into micro-batches). An epoch-based
    one (mmdet's recipes) trains one epoch of the first ``images_per_step``
    training images (mmengine's ``indices``; default: the recipe's total
    batch), which is one step.

    A model one optimizer step away from random initialisation scores no
    detection above the configs' 0.05, and the test would then check
    nothing of the evaluation path; the checks test the path, not accuracy.
    """
    cfg = Config.fromfile(config)
    if 'max_iters' in cfg.train_cfg:
        found: Dict[str, object] = {'train_cfg.max_iters': 1}
    else:
        images = images_per_step or cfg.paper_recipe['total_batch']
        found = {'train_cfg.max_epochs': 1,
                 'train_dataloader.dataset.indices': int(images)}

    def walk(node, prefix):
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value, f'{prefix}.{key}')
            elif key == 'score_thr':
                found[f'{prefix}.{key}'] = 0.0
    walk(cfg.model.get('test_cfg') or {}, 'model.test_cfg')
    found.update(random_backbone_overrides(cfg, config))
    return found


def random_backbone_overrides(cfg: Config, config: str) -> Dict[str, Any]:
    """Batch statistics for a backbone whose pretrained weights are not in
    this machine's cache and whose BN is frozen.

    Frozen BN from random initialisation normalises nothing (mean 0,
    variance 1): activations grow through every block, and a deep one
    (VoVNet-39: a MaskIoU loss of 9e4 after one step, no detection)
    predicts nothing finite. ``norm_eval=False`` trains on batch
    statistics, and ``momentum=None`` (a cumulative average: after one
    step, that step's statistics) lets the test normalise with them too;
    with momentum 0.1 the running variance stays ~0.9 + 0.1 x the batch's,
    and float32 rounding, amplified through 99 random layers, moved
    onnxruntime's boxes 0.7 px from PyTorch's. The path is then checked with
    the weights this machine has; the row's ``weights`` says the backbone
    was random.
    """
    from experiments.plan.weights_check import weight_sources
    backbone = cfg.model.get('backbone') or {}
    missing = [s for s in weight_sources(cfg, config) if not s.available
               and s.key.startswith('model.backbone.')]
    if missing and backbone.get('norm_eval'):
        return {'model.backbone.norm_eval': False,
                'model.backbone.norm_cfg.momentum': None}
    return {}
