"""How many of a run's mask-branch positives are its own detections.

    python tools/count_mask_positives.py work_dirs/smoke/<run dir>

Loads the run's config and last checkpoint, passes its training images
through the loss path's decoding (``train_detections``) and matching
(``_sample_mask_rois``) in eval-mode BN, and prints the positives that are
detections and the mean detection box side. ``--without-stride-rescale``
decodes as mmdet's ``FCOSHead.predict_by_feat`` does, without the stride
(what CenterMask's mask branch trained on before that was fixed).

The checkpoint loads strictly: one that does not fit the run's config
(missing, unexpected or misshapen keys; e.g. a run trained before a module
changed) stops the tool with one line naming the keys, exit status 2.
``--allow-partial-checkpoint`` loads only the keys that fit, with a warning
counting the rest; the counts then describe a partly initialised model.
"""
import argparse
import os.path as osp
import sys

import numpy as np
import torch
from mmdet.models.dense_heads import FCOSHead
from mmdet.registry import DATASETS, MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.dataset import pseudo_collate

import mmdet_plugins  # noqa: F401
from experiments.cli import fail
from experiments.store import last_checkpoint_target
from mmdet_plugins.export.checkpoint import (
    CheckpointMismatchError,
    load_weights,
)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('run_dir')
    parser.add_argument('--images', type=int, default=64)
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--without-stride-rescale', action='store_true')
    parser.add_argument('--allow-partial-checkpoint', action='store_true',
                        help='load only the checkpoint keys that fit the '
                        'config (default: a checkpoint that does not fit is '
                        'an error, exit 2)')
    args = parser.parse_args(argv)

    register_all_modules()
    np.random.seed(0)  # the training pipeline's random flips
    cfg = Config.fromfile(osp.join(args.run_dir, 'config.py'))
    # Configs written before the MaskIoU fix carry this refused key.
    cfg.model.train_cfg.get('mask', {}).pop('mask_thr_binary', None)
    model = MODELS.build(cfg.model)
    last = last_checkpoint_target(args.run_dir)
    try:
        # A run directory's own checkpoint (it holds mmengine's log
        # objects): trusted below the run dir.
        load_weights(model, last, f'{args.run_dir}/config.py',
                     trusted_dir=args.run_dir,
                     allow_partial=args.allow_partial_checkpoint)
    except (CheckpointMismatchError, FileNotFoundError) as e:
        return fail(str(e))
    model.train()
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    n = min(args.images, len(dataset))
    from_dets = total = 0
    sides = []
    for start in range(0, n, args.batch):
        batch = pseudo_collate([dataset[i] for i in
                                range(start, min(start + args.batch, n))])
        data = model.data_preprocessor(batch, True)
        metas = [s.metainfo for s in data['data_samples']]
        with torch.no_grad():
            outs = model.bbox_head(model.extract_feat(data['inputs']))
            if args.without_stride_rescale:
                dets = FCOSHead.predict_by_feat(
                    model.bbox_head, *outs, batch_img_metas=metas,
                    cfg=model.mask_train_cfg, rescale=False)
            else:
                dets = model.train_detections(outs, metas)
            results, count = model._sample_mask_rois(
                dets, [s.gt_instances for s in data['data_samples']])
        from_dets += count
        total += sum(len(r.pos_inds) for r in results)
        sides += [float((d.bboxes[:, 2:] - d.bboxes[:, :2]).mean())
                  for d in dets if len(d)]
    print(f'{args.run_dir}: {n} training images; mask-branch positives from '
          f'detections {from_dets} of {total} '
          f'({from_dets / max(total, 1):.1%}); mean detection box side '
          f'{np.mean(sides) if sides else float("nan"):.1f} px')
    return 0


if __name__ == '__main__':
    sys.exit(main())
