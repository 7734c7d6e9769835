"""Convert an official checkpoint to this project's keys.

    python tools/convert_checkpoint.py centermask2 \
        downloads/centermask2-V-39-eSE-FPN-ms-3x.pth \
        checkpoints/centermask2-V-39-eSE-FPN-ms-3x_mmdet.pth
    python tools/convert_checkpoint.py retinamask \
        downloads/retinanet_mask_R-50-FPN_2x_adjust_std011_ms_model.pth \
        checkpoints/retinamask_R-50-FPN_2x_ms_mmdet.pth
    python tools/convert_checkpoint.py vovnet \
        downloads/vovnet39_ese_detectron2.pth \
        checkpoints/vovnet39_ese_mmdet.pth
    python tools/convert_checkpoint.py vovnet timm://ese_vovnet39b \
        checkpoints/ese_vovnet39b_timm_mmdet.pth

``centermask2`` / ``retinamask`` write a whole-model checkpoint for
``load_from`` (an evaluation-only grid arm: experiments/grids/
official_checkpoints.yaml); ``vovnet`` writes backbone weights for
``model.backbone.init_cfg = dict(type='Pretrained', checkpoint=OUT)``.
``--config`` also builds that model and loads the result strictly, so a
conversion that would leave any layer at random fails here, not in a run.
A relative vovnet SRC is read from the working directory, else from this
checkout.
"""
import argparse
import hashlib
import os
import os.path as osp
import sys

import torch

from mmdet_plugins.converters import CONVERTERS
from mmdet_plugins.converters.vovnet import (TIMM_PREFIX, compare_state_dicts,
                                             load_vovnet_weights)

# The checkout this script belongs to: relative VoVNet sources (configs'
# checkpoints/<file>) are also looked for here.
CHECKOUT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def load_official(path: str) -> dict:
    """An official checkpoint: a pickled dict of tensors (maybe numpy)."""
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception:  # noqa: BLE001 -- older files pickle numpy arrays
        # The user's own download, named on the command line.
        print(f'{path}: not a plain tensor file; loading it with pickle',
              file=sys.stderr)
        checkpoint = torch.load(path, map_location='cpu', weights_only=False)
        model = checkpoint.get('model', checkpoint)
        return {k: torch.as_tensor(v) for k, v in model.items()
                if hasattr(v, 'shape')}


def check_against_config(state: dict, config: str, backbone_only: bool):
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config
    import mmdet_plugins  # noqa: F401
    register_all_modules()
    model = MODELS.build(Config.fromfile(config).model)
    target = model.backbone if backbone_only else model
    # The self-adjusting smooth L1's statistics are training state the
    # official checkpoints never hold.
    missing, extra, shapes = compare_state_dicts(
        target.state_dict(), state, skip=('bbox_head.loss_bbox.', ))
    if missing or extra or shapes:
        raise SystemExit(f'{config}: the converted weights do not fit: '
                         f'missing {missing[:5]}, unexpected {extra[:5]}, '
                         f'other shapes {shapes[:5]}')
    print(f'{config}: all {len(state)} tensors fit')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('source', choices=sorted(CONVERTERS) + ['vovnet'])
    parser.add_argument('src', help='official checkpoint file (vovnet: also '
                        'timm://<model>)')
    parser.add_argument('dst', help='where to write the converted file')
    parser.add_argument('--config', help='our config the result must fit')
    args = parser.parse_args()

    if args.source == 'vovnet':
        state = load_vovnet_weights(args.src, root=CHECKOUT)
    else:
        if not osp.isfile(args.src):
            raise SystemExit(f'{args.src}: no such checkpoint file')
        state = CONVERTERS[args.source](load_official(args.src))
    if args.config:
        check_against_config(state, args.config, args.source == 'vovnet')
    meta = dict(converted_from=args.src, source=args.source)
    if not args.src.startswith(TIMM_PREFIX):
        src = args.src
        if not osp.isabs(src) and not osp.exists(src):
            src = osp.join(CHECKOUT, src)  # where load_vovnet_weights read
        meta['source_sha256'] = sha256(src)
    os.makedirs(osp.dirname(osp.abspath(args.dst)), exist_ok=True)
    tmp = args.dst + '.tmp'
    torch.save(dict(state_dict=state, meta=meta), tmp)
    os.replace(tmp, args.dst)
    print(f'wrote {args.dst}: {len(state)} tensors from {args.src}')


if __name__ == '__main__':
    main()
