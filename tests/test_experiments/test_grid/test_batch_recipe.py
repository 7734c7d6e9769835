"""A run's total batch, placement and recipe
(experiments/grid/batch_recipe.py)."""
import glob
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from experiments.data.prepare import PreparedDataset
from experiments.grid.batch_recipe import (
    Placement,
    Recipe,
    RecipeError,
    apply_run_recipe,
    declared_recipe,
    place,
)
from experiments.grid.run_config import resolve_run
from experiments.grid.spec import GridSpecError, RunSpec, load_grid
from experiments.store import PROJECT_ROOT, project_path

CM_R50 = 'configs/centermask/centermask_r50_fpn_1x_coco.py'

# The official recipes, read from the official files (not from our configs):
# total batch, LR, warm-up (iterations, factor, method), schedule, steps.
OFFICIAL = {
    # youngwanLEE/CenterMask @72147e8 centermask_R_50_FPN_1x.yaml +
    # maskrcnn-benchmark defaults (WARMUP_FACTOR 1/3, WARMUP_ITERS 500).
    'configs/centermask/centermask_r50_fpn_1x_coco.py':
        (16, 0.01, 500, 1 / 3, 'constant', 90000, None, (60000, 80000)),
    # youngwanLEE/centermask2 @6adabd6 Base-CenterMask-VoVNet.yaml +
    # detectron2 v0.3 defaults (WARMUP linear 1/1000 over 1000).
    'configs/centermask/centermask_v2-39_fpn_1x_coco.py':
        (16, 0.01, 1000, 0.001, 'linear', 90000, None, (60000, 80000)),
    'configs/centermask/centermask_v2-57_fpn_1x_coco.py':
        (16, 0.01, 1000, 0.001, 'linear', 90000, None, (60000, 80000)),
    'configs/centermask/centermask_v2-39-timm_fpn_1x_coco.py':
        (16, 0.01, 1000, 0.001, 'linear', 90000, None, (60000, 80000)),
    # centermask_V_{39,57,99}_eSE_FPN_ms_3x.yaml.
    **{f'configs/centermask/centermask_v2-{d}_fpn_ms-3x_coco.py':
       (16, 0.01, 1000, 0.001, 'linear', 270000, None, (210000, 250000))
       for d in (39, 57, 99)},
    # centermask_lite_*_ms_4x.yaml.
    **{f'configs/centermask/centermask-lite_{b}_fpn_ms-4x_coco.py':
       (16, 0.01, 1000, 0.001, 'linear', 360000, None, (300000, 340000))
       for b in ('v-39', 'v-19', 'v-19-slim', 'v-19-slim-dw', 'mv2')},
    # chengyangfu/retinamask @5bcf2e7 retinanet_mask_R-50-FPN_1x.yaml +
    # its defaults (WARMUP linear 1/3 over 500).
    'configs/retinamask/retinamask_r50_fpn_1x_coco.py':
        (8, 0.005, 500, 1 / 3, 'linear', 180000, None, (120000, 160000)),
    'configs/retinamask/retinanet_r50_fpn_1x_coco_retinamask-recipe.py':
        (8, 0.005, 500, 1 / 3, 'linear', 180000, None, (120000, 160000)),
    # mmdet 3.3.0 schedule_1x.py (+ retinanet lr 0.01), 8 GPUs x 2.
    'configs/retinamask/retinamask_r50_fpn_1x_coco_mmdet-recipe.py':
        (16, 0.01, 500, 0.001, 'linear', None, 12, (8, 11)),
    'configs/mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py':
        (16, 0.02, 500, 0.001, 'linear', None, 12, (8, 11)),
}


def _dataset() -> PreparedDataset:
    return PreparedDataset(name='coco2017', data_root='data/coco',
                           train_ann='a.json', train_img='t/',
                           val_ann='v.json', val_img='v/',
                           classes=('a', 'b'), val_images=5000,
                           val_instances=36000)


@pytest.mark.parametrize('total, processes, cap, expected', [
    (16, 8, 2, (8, 2, 1)),     # mmdet's 8 GPUs x 2
    (16, 4, 2, (4, 2, 2)),     # 4 GPUs with room for 2 images each
    (16, 4, 4, (4, 4, 1)),     # 4 GPUs with room for 4
    (16, 1, 2, (1, 2, 8)),     # 1 GPU, 2 images, 8 accumulation steps
    (16, 1, 16, (1, 16, 1)),   # 1 big GPU
    (8, 1, 3, (1, 2, 4)),      # 3 would fit, but 2 divides the share
    (4, 2, 4, (2, 2, 1)),
])
def test_placement_spreads_the_total_batch(total, processes, cap, expected):
    placement = place(total, processes, cap)
    assert (placement.processes, placement.images_per_process,
            placement.accumulation) == expected
    assert placement.total_batch == total


def test_placement_refuses_a_process_count_that_does_not_divide():
    with pytest.raises(RecipeError, match='total batch 16 does not split '
                       'over 3 processes'):
        place(16, 3, 2)


def test_linear_rule_is_detectron2_auto_scale_workers():
    # detectron2 DefaultTrainer.auto_scale_workers, 16 -> 8 images:
    # BASE_LR x 0.5; MAX_ITER, WARMUP_ITERS, STEPS x 2 (rounded).
    cm2 = Recipe(total_batch=16, lr=0.01, warmup_iters=1000,
                 warmup_factor=0.001, max_iters=90000,
                 milestones=(60000, 80000))
    half = cm2.scaled(8)
    assert half.lr == pytest.approx(0.005)
    assert (half.warmup_iters, half.max_iters, half.milestones) == (
        2000, 180000, (120000, 160000))
    assert half.warmup_factor == 0.001
    # Epoch-based: the same epochs (the same images seen).
    mmdet = Recipe(total_batch=16, lr=0.02, warmup_iters=500,
                   max_epochs=12, milestones=(8, 11))
    assert mmdet.scaled(32).milestones == (8, 11)
    assert mmdet.scaled(32).max_epochs == 12
    assert mmdet.scaled(32).warmup_iters == 250


@pytest.mark.parametrize('config', sorted(OFFICIAL))
def test_every_coco_config_declares_and_trains_the_official_recipe(config):
    cfg = Config.fromfile(project_path(config))
    paper = declared_recipe(cfg)
    batch, lr, warm, factor, method, iters, epochs, steps = OFFICIAL[config]
    assert (paper.total_batch, paper.warmup_iters, paper.warmup_method,
            paper.max_iters, paper.max_epochs, paper.milestones) == (
        batch, warm, method, iters, epochs, steps)
    assert math.isclose(paper.lr, lr) and math.isclose(
        paper.warmup_factor, factor)
    # ... and the config as written trains it: no difference at its batch.
    recipe = apply_run_recipe(cfg, None, 'none', None, None, devices=8)
    assert recipe.changes == (), recipe.changes
    assert recipe.summary() == 'paper'


@pytest.mark.slow
def test_every_config_under_configs_declares_a_recipe():
    configs = sorted(p for p in glob.glob(osp.join(
        PROJECT_ROOT, 'configs', '*', '*.py')) if '_base_' not in p)
    assert len(configs) > 20
    for path in configs:
        cfg = Config.fromfile(path)
        assert 'paper_recipe' in cfg, path
        assert declared_recipe(cfg).source, path


def test_one_gpu_keeps_the_paper_batch_by_accumulation():
    cfg = Config.fromfile(project_path(CM_R50))
    recipe = apply_run_recipe(cfg, 16, 'none', 1, None)
    assert recipe.placement == Placement(1, 2, 8)
    assert cfg.train_dataloader.batch_size == 2
    assert cfg.optim_wrapper.accumulative_counts == 8
    # Micro-batches are mmengine iterations; the LR schedulers step once per
    # optimizer step, so their numbers stay the recipe's.
    assert cfg.train_cfg.max_iters == 8 * 90000
    assert cfg.default_hooks.param_scheduler == dict(
        type='AccumulatedParamSchedulerHook', accumulative_counts=8)
    assert cfg.param_scheduler[0].end == 500
    assert cfg.param_scheduler[1].milestones == [60000, 80000]
    assert cfg.default_hooks.checkpoint.interval == 8 * 5000
    assert cfg.optim_wrapper.optimizer.lr == 0.01
    assert recipe.summary() == 'paper'
    assert recipe.row()['total_batch'] == 16


def test_other_total_batch_is_refused_without_a_rule():
    cfg = Config.fromfile(project_path(CM_R50))
    with pytest.raises(RecipeError) as info:
        apply_run_recipe(cfg, 2, 'none', 1, None)
    message = str(info.value)
    assert 'total batch 2 differs from the recipe\'s 16 at LR 0.01' in message
    assert 'centermask_R_50_FPN_1x.yaml' in message
    assert 'lr_scaling: linear' in message


def test_linear_rule_scales_lr_warmup_and_schedule():
    cfg = Config.fromfile(project_path(CM_R50))
    recipe = apply_run_recipe(cfg, 8, 'linear', 4, None)
    assert recipe.placement == Placement(4, 2, 1)
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(0.005)
    assert cfg.param_scheduler[0].end == 1000
    assert cfg.train_cfg.max_iters == 180000
    assert cfg.param_scheduler[1].milestones == [120000, 160000]
    assert recipe.changes == ()
    assert recipe.summary() == 'linear 16->8'


def test_an_lr_override_is_refused_unless_manual():
    cfg = Config.fromfile(project_path(CM_R50))
    cfg.optim_wrapper.optimizer.lr = 0.02
    with pytest.raises(RecipeError, match=r'LR 0.02 at total batch 16 '
                       r'differs from the recipe\'s 0.01'):
        apply_run_recipe(cfg, 16, 'none', 8, None)
    cfg = Config.fromfile(project_path(CM_R50))
    cfg.optim_wrapper.optimizer.lr = 0.02
    recipe = apply_run_recipe(cfg, 2, 'manual', 1, None)
    assert recipe.summary() == 'manual'
    assert recipe.row()['base_lr'] == 0.02


def test_a_shortened_schedule_is_recorded_not_refused():
    cfg = Config.fromfile(project_path(CM_R50))
    cfg.train_cfg.max_iters = 100
    recipe = apply_run_recipe(cfg, 16, 'none', 8, None)
    assert recipe.summary() == 'paper; changed: max_iters 100 (paper 90000)'


def test_grid_refuses_placement_keys_as_overrides():
    run = RunSpec(grid='g', model='m', arm='a', dataset='coco2017', seed=0,
                  config=CM_R50,
                  overrides={'train_dataloader.batch_size': 2})
    with pytest.raises(GridSpecError, match='the run\'s placement sets it'):
        resolve_run(run, _dataset(), 'g.yaml')


GRIDS = sorted(glob.glob(osp.join(PROJECT_ROOT, 'experiments', 'grids',
                                  '*.yaml')))


# Resolving every run of every grid takes minutes: `make test-fast` keeps
# the smoke grid, `make test` checks them all.
@pytest.mark.parametrize('grid_path', [
    pytest.param(g, id=osp.basename(g), marks=() if g.endswith('/smoke.yaml')
                 else pytest.mark.slow) for g in GRIDS])
def test_every_shipped_grid_trains_at_its_papers_batch_and_lr(grid_path):
    """Every grid states its total batch; on 8 GPUs, 1 GPU and the CPU every
    run trains at the recipe's total batch and LR (a COCO grid dropping back
    to batch 2 at LR 0.01 fails here)."""
    grid = load_grid(grid_path)
    for run in grid.expand():
        assert run.total_batch is not None, (grid_path, run.model)
    seen = set()
    for run in grid.expand():
        if (run.model, run.arm) in seen:
            continue
        seen.add((run.model, run.arm))
        if run.overrides.get('evaluate_only'):
            # Released checkpoints (not here); nothing trains.
            continue
        for devices in (8, 1):
            cfg, recipe = resolve_run(run, _dataset(), grid_path, devices)
            assert run.lr_scaling == 'none'
            assert recipe.actual.total_batch == recipe.paper.total_batch
            assert recipe.placement.total_batch == recipe.paper.total_batch
            assert cfg.optim_wrapper.optimizer.lr == recipe.paper.lr
            per_step = cfg.train_dataloader.batch_size * \
                cfg.optim_wrapper.get('accumulative_counts', 1) * \
                recipe.placement.processes
            assert per_step == recipe.paper.total_batch
            if any(d.data_root == 'data/coco'
                   for d in grid.datasets.values()):
                assert recipe.paper.total_batch in (8, 16)
            official = OFFICIAL.get(run.config)
            if official is not None:
                assert recipe.paper.total_batch == official[0]
                assert math.isclose(recipe.paper.lr, official[1])


def test_accumulation_trains_what_the_total_batch_trains(tmp_path):
    """1 process x 1 image x 4 accumulation steps = 1 x 4 x 1, through
    mmengine's Runner: same parameters after 6 optimizer steps with a
    warm-up and an LR step inside them. Fails if the LR schedulers stepped
    per micro-batch (mmengine's own ParamSchedulerHook) or accumulation
    summed instead of averaging."""
    from mmengine.model import BaseModel
    from mmengine.runner import Runner

    import mmdet_plugins  # noqa: F401 -- registers the hook

    class Linear(BaseModel):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(3, 1)

        def forward(self, x, y, mode='loss'):
            x = torch.stack(x) if isinstance(x, list) else x
            y = torch.stack(y) if isinstance(y, list) else y
            return dict(loss=((self.fc(x).squeeze(1) - y) ** 2).mean())

    gen = torch.Generator().manual_seed(0)
    data = [dict(x=torch.randn(3, generator=gen),
                 y=torch.randn((), generator=gen)) for _ in range(24)]

    def train(images, accumulation):
        torch.manual_seed(0)
        model = Linear()
        cfg = Config(dict(
            optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1,
                                              momentum=0.9)),
            param_scheduler=[
                dict(type='LinearLR', start_factor=0.1, by_epoch=False,
                     begin=0, end=3),
                dict(type='MultiStepLR', by_epoch=False, begin=0, end=6,
                     milestones=[4], gamma=0.1)],
            train_cfg=dict(type='IterBasedTrainLoop', max_iters=6)))
        recipe = Recipe(total_batch=4, lr=0.1, warmup_iters=3,
                        warmup_factor=0.1, max_iters=6, milestones=(4,))
        cfg.paper_recipe = dict(vars(recipe))
        cfg.train_dataloader = dict(batch_size=images)
        placement = apply_run_recipe(cfg, 4, 'none', 1, images)
        assert placement.placement.accumulation == accumulation
        runner = Runner(
            model=model, work_dir=str(tmp_path / f'{images}'),
            train_dataloader=dict(
                dataset=data, batch_size=images,
                sampler=dict(type='DefaultSampler', shuffle=False),
                collate_fn=dict(type='default_collate')),
            optim_wrapper=cfg.optim_wrapper,
            param_scheduler=cfg.param_scheduler,
            train_cfg=cfg.train_cfg,
            default_hooks=dict(cfg.get('default_hooks', {}),
                               checkpoint=None, logger=None),
            default_scope='mmengine')
        runner.train()
        return [p.detach().clone() for p in model.parameters()]

    whole = train(4, 1)
    accumulated = train(1, 4)
    for a, b in zip(whole, accumulated):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
