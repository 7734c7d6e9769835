"""2 processes x 1 image against 1 process x 2 images, on CPU (gloo).

Each detector trains 3 SGD steps twice through the harness
(``run_grid.py``, ``rank_launch`` -> ``torchrun`` -> ``train_run``): once as
two gloo processes with one image each, once as one process with both
images. ``RankLossLogHook`` records every rank's images and loss terms.

What the official code does with a batch split over processes decides what
must be equal:

- FCOS's normalisers (number of positives, centerness sum) are averaged
  over the processes (CM2 ``fcos_outputs.py`` ``reduce_sum / num_gpus``;
  mmdet ``FCOSHead`` ``reduce_mean``): CenterMask's ``loss_cls``,
  ``loss_bbox`` and ``loss_centerness`` of 2 x 1 equal 1 x 2's.
- Every other term is normalised per process in the official code, so it
  differs between 2 x 1 and 1 x 2 whenever the two images differ in what is
  averaged over: CenterMask's mask and MaskIoU losses (CM2 ``mask_head.py``
  ``reduction="mean"``, ``maskiou_head.py`` ``/ pos_inds.shape[0]``);
  RetinaMask's classification (``/ (num_pos + N)``), box (``/ (4 num_pos)``)
  and mask losses (RM ``retinanet_loss.py`` 145-157, no all-reduce; the
  self-adjusting smooth L1's running mean/var are per process too:
  maskrcnn-benchmark wraps DDP with ``broadcast_buffers=False`` and never
  syncs them); Mask R-CNN's RPN, box and mask losses (mmdet: per-process
  ``avg_factor``, no ``reduce_mean``).

So the exact check is against a one-process *reference of the 2 x 1 run*:
each step's loss = the global terms of the two images together + the mean
over the two "ranks" of the per-process terms of each image alone (each rank
with its own buffers), one SGD step on it. The 2-process run must match it
term by term and in every parameter after 3 steps. It fails if a process saw
the other's image (the terms and the sampler check differ), if a normaliser
stayed per process where the official code averages it (the FCOS terms
differ), or if gradients were summed or not all-reduced (the parameters
differ).

Tolerance: the two runs sum the same float32 numbers in another order (gloo
all-reduces bucketed gradients and halves them; the reference lets autograd
add the two images' gradients), ~1e-7 relative per step; measured after 3
steps: parameters within 1.7e-6 (CenterMask), 1.3e-6 (Mask R-CNN), 3e-8
(RetinaMask), so 1e-5 absolute; losses 1e-5 relative. What a broken
mechanism does, measured: FCOS's positives left per process moved CenterMask's
step-0 ``loss_centerness`` by 8e-5 relative (0.72082 vs 0.72076);
gradients summed instead of averaged moved Mask R-CNN's step-1
``loss_rpn_cls`` by 8e-4 relative. Plain 1 x 2 differs from 2 x 1 by up to
1.8e-3 (CenterMask, Mask R-CNN) and 0.15 (RetinaMask, whose every
normaliser is per process) in the parameters after 3 steps.

Held equal for the comparison (not the mechanism under test): no random
flip; BN statistics frozen (``norm_eval``: with training BN, 2 x 1
normalises each image alone and 1 x 2 the pair; on GPUs ``sync_bn='torch'``
would make training BN use both processes' statistics, and SyncBatchNorm
has no CPU kernel; every COCO config freezes BN anyway); the RPN and RoI
samplers take every anchor and proposal (1 x 2 draws both images' random
samples from one stream, 2 x 1 from two); mask positives uncapped.
"""
import glob
import json
import os.path as osp

import pytest
import torch
import yaml
from helpers import TINY_MASK_RCNN, run_grid_cli, tiny_dataset_entry

TINY_CENTERMASK = 'configs/centermask/centermask_r18-tiny_fpn_builtin.py'
TINY_RETINAMASK = 'configs/retinamask/retinamask_r18-tiny_fpn_builtin.py'

# Loss terms averaged over processes by the official code; the rest are
# per process (see the module docstring).
DETECTORS = {
    'mask_rcnn': dict(
        config=TINY_MASK_RCNN, global_terms=(),
        overrides={'model.train_cfg.rpn.sampler.num': 10**6,
                   'model.train_cfg.rcnn.sampler.num': 10**6}),
    'centermask': dict(
        config=TINY_CENTERMASK,
        global_terms=('loss_cls', 'loss_bbox', 'loss_centerness'),
        overrides={'model.train_cfg.mask.max_pos_per_img': None}),
    'retinamask': dict(
        config=TINY_RETINAMASK, global_terms=(),
        overrides={'model.train_cfg.mask.max_pos_per_img': None}),
}
STEPS = 3
LR = 0.01


def _initial_weights(config: str, path: str) -> None:
    """Weights both placements start from (the fixture's 2 classes)."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config

    from experiments.grid.run_config import _set_num_classes
    from experiments.store import project_path
    register_all_modules()
    cfg = Config.fromfile(project_path(config))
    _set_num_classes(cfg.model, 2)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    torch.save(model.state_dict(), path)


@pytest.fixture(scope='module')
def parity_runs(tmp_path_factory, tiny_builtin):
    """Every detector trained as 2 x 1 and 1 x 2 through the harness."""
    root = tmp_path_factory.mktemp('parity')
    models = {}
    for name, spec in DETECTORS.items():
        init = str(root / f'{name}_init.pth')
        _initial_weights(spec['config'], init)
        overrides = {
            'train_cfg.max_iters': STEPS,
            'default_hooks.checkpoint.interval': STEPS,
            'param_scheduler': [],
            'optim_wrapper.optimizer.lr': LR,
            'train_dataloader.dataset.pipeline.3.prob': 0.0,
            'model.backbone.norm_eval': True,
            'allow_untrained_frozen_backbone': True,
            'model.init_cfg': {'type': 'Pretrained', 'checkpoint': init},
            'custom_hooks': [{'type': 'FiniteLossHook'},
                             {'type': 'RankLossLogHook'}],
            **spec['overrides']}
        for processes in (2, 1):
            models[f'{name}_{processes}proc'] = dict(
                config=spec['config'], processes=processes,
                overrides=overrides)
    grid = root / 'parity.yaml'
    grid.write_text(yaml.safe_dump(dict(
        name='parity', work_dir=str(root / 'work'), models=models,
        datasets={'tiny': tiny_dataset_entry(tiny_builtin)}, seeds=[0],
        total_batch=2, lr_scaling='manual')))
    result = run_grid_cli(str(grid), '--slots', '2', timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    return str(root / 'work'), str(grid)


def _run_dir(work: str, model: str) -> str:
    (found,) = glob.glob(osp.join(work, f'{model}__*'))
    return found


def _rank_records(run_dir: str) -> dict:
    """{rank: [record per iteration]}"""
    out = {}
    for path in sorted(glob.glob(osp.join(run_dir, 'rank_losses',
                                          'rank*.jsonl'))):
        with open(path) as f:
            records = [json.loads(line) for line in f]
        out[records[0]['rank']] = records
    return out


def _terms(losses: dict) -> dict:
    """Loss terms (tensors with grad) from a model's loss dict."""
    out = {}
    for key, value in losses.items():
        if 'loss' not in key:
            continue
        out[key] = sum(value) if isinstance(value, (list, tuple)) else value
    return out


def _reference(run_dir: str, images_per_step, global_terms) -> tuple:
    """One-process reference of a 2 x 1 run: per-step loss terms, final
    parameters and rank 0's buffers (see the module docstring)."""
    from mmdet.registry import DATASETS, MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmengine.optim import build_optim_wrapper

    register_all_modules()
    cfg = Config.fromfile(osp.join(run_dir, 'config.py'))
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    index = {int(dataset.get_data_info(i)['img_id']): i
             for i in range(len(dataset))}
    model = MODELS.build(cfg.model)
    model.load_state_dict(torch.load(cfg.model.init_cfg.checkpoint))
    model.train()
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    buffers = [{k: v.clone() for k, v in model.named_buffers()}
               for _ in images_per_step[0]]

    def forward(img_ids):
        batch = pseudo_collate([dataset[index[i]] for i in img_ids])
        data = model.data_preprocessor(batch, True)
        return _terms(model(**data, mode='loss'))

    def load_buffers(state):
        # Only what differs: a buffer read by the forward (frozen BN's
        # statistics) must keep its autograd version until the backward.
        for name, buf in model.named_buffers():
            if not torch.equal(buf, state[name]):
                buf.copy_(state[name])

    steps = []
    for img_ids in images_per_step:
        terms = {}
        if global_terms:
            together = forward([i for ids in img_ids for i in ids])
            terms.update({k: together[k] for k in global_terms})
        per_rank = []
        for rank, ids in enumerate(img_ids):
            load_buffers(buffers[rank])
            per_rank.append(forward(ids))
            buffers[rank] = {k: v.clone() for k, v in model.named_buffers()}
        for key in per_rank[0]:
            if key not in global_terms:
                terms[key] = sum(t[key] for t in per_rank) / len(per_rank)
        load_buffers(buffers[0])
        optim.update_params(sum(terms.values()))
        steps.append({k: float(v) for k, v in terms.items()})
    return steps, {k: v.detach() for k, v in model.state_dict().items()}


def _checkpoint(run_dir: str) -> dict:
    ckpt = torch.load(osp.join(run_dir, f'iter_{STEPS}.pth'),
                      map_location='cpu', weights_only=False)
    return ckpt['state_dict']


@pytest.mark.parametrize('detector', sorted(DETECTORS))
def test_two_processes_train_the_model_one_process_would(parity_runs,
                                                          detector):
    work, _ = parity_runs
    spec = DETECTORS[detector]
    two = _run_dir(work, f'{detector}_2proc')
    one = _run_dir(work, f'{detector}_1proc')
    ranks = _rank_records(two)
    single = _rank_records(one)
    assert sorted(ranks) == [0, 1] and sorted(single) == [0]

    # The sampler: each step, the two ranks see the two images the single
    # process sees, one each.
    images = [[ranks[0][s]['img_ids'], ranks[1][s]['img_ids']]
              for s in range(STEPS)]
    for s in range(STEPS):
        assert len(images[s][0]) == len(images[s][1]) == 1
        assert sorted(images[s][0] + images[s][1]) == sorted(
            single[0][s]['img_ids'])
        assert images[s][0] != images[s][1]

    steps, params = _reference(two, images, spec['global_terms'])
    report = []
    for s in range(STEPS):
        for key, expected in steps[s].items():
            ddp = (ranks[0][s]['losses'][key]
                   + ranks[1][s]['losses'][key]) / 2
            assert ddp == pytest.approx(expected, rel=1e-5, abs=1e-7), (
                detector, s, key)
            one_proc = single[0][s]['losses'][key]
            report.append((s, key, abs(ddp - one_proc)))
    state = _checkpoint(two)
    worst = 0.0
    for name, value in params.items():
        torch.testing.assert_close(state[name].float(), value.float(),
                                   rtol=0, atol=1e-5, msg=name)
        worst = max(worst, float((state[name].float()
                                  - value.float()).abs().max()))

    # Against plain 1 x 2: at the first step (same weights) the globally
    # normalised terms are equal, the per-process ones differ only where the
    # images differ in what they average over.
    first = {key: d for s, key, d in report if s == 0}
    for key in spec['global_terms']:
        assert first[key] < 1e-5 * max(1.0, abs(steps[0][key])), key
    single_params = _checkpoint(one)
    gap = max(float((single_params[n].float() - v.float()).abs().max())
              for n, v in params.items())
    print(f'{detector}: 2x1 vs reference max |param diff| {worst:.2e}; '
          f'2x1 vs 1x2 max |param diff| {gap:.2e}; step-0 |loss diff| 2x1 '
          f'vs 1x2: ' + ', '.join(f'{k} {d:.2e}' for k, d in first.items()))


def test_two_process_rows_say_their_placement(parity_runs):
    import pandas as pd
    work, _ = parity_runs
    df = pd.read_csv(osp.join(work, 'results.csv')).set_index('model')
    row = df.loc['centermask_2proc']
    assert (row.world_size, row.images_per_process, row.accumulation,
            row.total_batch) == (2, 1, 1, 2)
    assert row.base_lr == LR and row.status == 'finished'
    assert row.recipe == 'manual'
    assert df.loc['centermask_1proc'].images_per_process == 2
    assert row.gpus == 0
