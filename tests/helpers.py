"""Shared pieces of the tests that build or train models."""
import importlib.util
import os.path as osp

import yaml
from mmengine.config import Config

from experiments.data.prepare import prepare_dataset
from experiments.grid.spec import DatasetSpec
from experiments.store import project_path
from experiments.grid.run_config import set_dataset, unformatted

TINY_MASK_RCNN = 'configs/mask_rcnn/mask-rcnn_r18-tiny_fpn_builtin.py'


def tiny_dataset_entry(root: str) -> dict:
    """A grid ``datasets`` entry for the ``tiny_builtin`` fixture."""
    return dict(data_root=root,
                train_ann='annotations/instances_train.json',
                train_img='train/', val_ann='annotations/instances_val.json',
                val_img='val/')


# A few iterations at batch 2: enough to train, checkpoint and evaluate.
TINY_OVERRIDES = {'train_cfg.max_iters': 2,
                  'default_hooks.checkpoint.interval': 2}
# Grid keys of the tests' runs: a total batch of 2 on one process, at the
# tiny configs' LR (meant for 4: "manual", the results row says so).
TINY_BATCH = {'total_batch': 2, 'lr_scaling': 'manual'}


def write_grid(path, work_dir, dataset_root, arms, **extra) -> str:
    """A grid file: tiny Mask R-CNN on the fixture dataset, seed 0."""
    spec = dict(
        name='t', work_dir=str(work_dir),
        models={'mask_rcnn': TINY_MASK_RCNN},
        arms=arms,
        datasets={'tiny': tiny_dataset_entry(dataset_root)},
        seeds=[0], overrides=TINY_OVERRIDES, **TINY_BATCH)
    spec.update(extra)
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def tiny_config(root: str, work_dir: str, max_iters: int,
                config: str = TINY_MASK_RCNN) -> Config:
    """A tiny-model config on the fixture dataset, checkpointing every 2
    (its text unformatted, as the grid's runs train: no yapf at each
    checkpoint)."""
    cfg = unformatted(Config.fromfile(project_path(config)))
    dataset = prepare_dataset(DatasetSpec(name='tiny',
                                          **tiny_dataset_entry(root)),
                              verbose=False)
    set_dataset(cfg, dataset)
    cfg.work_dir = work_dir
    cfg.train_cfg.max_iters = max_iters
    cfg.train_dataloader.batch_size = 2
    cfg.default_hooks.checkpoint.interval = 2
    cfg.default_hooks.logger.interval = 1
    cfg.randomness = dict(seed=0)
    return cfg


def checkpoint_path(work_dir: str, iteration: int) -> str:
    return osp.join(work_dir, f'iter_{iteration}.pth')


def overfit_totals(config: str, root: str, steps: int = 30,
                   lr: float = 0.01) -> list:
    """Total loss of each SGD step on one fixed batch of two real images."""
    import torch
    from mmdet.registry import DATASETS, MODELS
    from mmdet.utils import register_all_modules
    from mmengine.dataset import pseudo_collate

    register_all_modules()
    cfg = tiny_config(root, '/tmp/unused', max_iters=1, config=config)
    cfg.train_dataloader.dataset.pipeline = [
        t for t in cfg.train_dataloader.dataset.pipeline
        if t['type'] != 'RandomFlip']
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    batch = pseudo_collate([dataset[0], dataset[1]])
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    # As the tiny runtime trains (configs/_base_/schedules/tiny_iters.py): a
    # linear warm-up from 1/100 and gradient clipping at 10. Without them
    # CM2's MaskIoU initialisation (Kaiming fan_out FCs, which the official
    # recipe tames with its 1/1000 warm-up) diverges at a full LR.
    warmup = max(steps // 3, 1)
    totals = []
    for step in range(steps):
        for group in optimizer.param_groups:
            group['lr'] = lr * min(1.0, 0.01 + 0.99 * step / warmup)
        data = model.data_preprocessor(batch, True)
        losses = model(**data, mode='loss')
        total = sum(v for k, v in losses.items() if 'loss' in k)
        optimizer.zero_grad()
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
        totals.append(float(total))
    return totals


def demo_inputs() -> dict:
    """Two random images (128x128, 96x128) with 3-class boxes and masks,
    whose original images were twice as large (scale factor 0.5)."""
    from mmdet.testing import demo_mm_inputs
    packed = demo_mm_inputs(2, [[3, 128, 128], [3, 96, 128]], num_classes=3,
                            with_mask=True)
    for sample in packed['data_samples']:
        h, w = sample.img_shape
        sample.set_metainfo(dict(scale_factor=(0.5, 0.5),
                                 ori_shape=(2 * h, 2 * w)))
    return packed


def run_grid_cli(grid: str, *args: str, timeout: float = 300):
    """``experiments/run_grid.py GRID ARGS`` in a child process, output
    captured."""
    import subprocess
    import sys
    from experiments.store import PROJECT_ROOT
    return subprocess.run(
        [sys.executable, 'experiments/run_grid.py', grid, *args],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=timeout)


def last_checkpoint_iteration(run_dir: str) -> int:
    """The iteration of the checkpoint a run's ``last_checkpoint`` names
    (mmengine writes it once the checkpoint is whole); 0 before any."""
    import re
    path = osp.join(str(run_dir), 'last_checkpoint')
    if not osp.isfile(path):
        return 0
    with open(path) as f:
        m = re.search(r'iter_(\d+)\.pth', f.read())
    return int(m.group(1)) if m else 0


def wait_for(condition, timeout: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after
    ``timeout`` seconds."""
    import time
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f'timed out waiting for {what}'
        time.sleep(0.2)


def load_script(path: str, name: str):
    """A script of the project (e.g. ``tools/export_onnx.py``, not a
    package module) imported as module ``name``."""
    spec = importlib.util.spec_from_file_location(name, project_path(path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
