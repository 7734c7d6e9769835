"""Official CenterMask (centermask2) and RetinaMask checkpoints -> ours.

``convert_centermask2(state_dict)`` maps a centermask2 model checkpoint
(detectron2 names: ``backbone.bottom_up.*``, ``backbone.fpn_lateral3``,
``proposal_generator.fcos_head.*``, ``roi_heads.mask_head.*``,
``roi_heads.maskiou_head.*``) onto this project's ``CenterMask``;
``convert_retinamask(state_dict)`` maps a chengyangfu/retinamask
(maskrcnn-benchmark) checkpoint (``backbone.body.*``, ``backbone.fpn.*``,
``rpn.head.*``, ``mask.*``) onto ``RetinaMask``. Both raise on a key they
cannot place, naming it, so nothing is silently left at random.

What a converted RetinaMask does not reproduce bit for bit (mmdet's box
conventions; see docs/fidelity.md): maskrcnn-benchmark's "+1" box
arithmetic and its rounding of ratio-0.5/2 anchors.
"""
import re
from collections import OrderedDict
from typing import Callable, Dict, List, Tuple

import torch

from .vovnet import convert_vovnet_state_dict

Rule = Tuple[str, str]

# detectron2 ResNet (centermask2's R-50) -> mmdet ResNet.
_D2_RESNET: List[Rule] = [
    (r'stem\.conv1\.norm\.(\w+)', r'bn1.\1'),
    (r'stem\.conv1\.weight', r'conv1.weight'),
    (r'res(\d)\.(\d+)\.shortcut\.norm\.(\w+)',
     r'layer{res}.\2.downsample.1.\3'),
    (r'res(\d)\.(\d+)\.shortcut\.weight',
     r'layer{res}.\2.downsample.0.weight'),
    (r'res(\d)\.(\d+)\.conv(\d)\.norm\.(\w+)', r'layer{res}.\2.bn\3.\4'),
    (r'res(\d)\.(\d+)\.conv(\d)\.weight', r'layer{res}.\2.conv\3.weight'),
]
# maskrcnn-benchmark ResNet -> mmdet ResNet (the same names but the stem).
_MB_RESNET: List[Rule] = [
    (r'stem\.conv1\.weight', r'conv1.weight'),
    (r'stem\.bn1\.(\w+)', r'bn1.\1'),
    (r'(layer\d\.\d+\.(?:conv\d|bn\d|downsample\.[01])\.\w+)', r'\1'),
]
_CM2_HEADS: List[Rule] = [
    (r'backbone\.fpn_lateral([345])\.(\w+)',
     r'neck.lateral_convs.{l3}.conv.\2'),
    (r'backbone\.fpn_output([345])\.(\w+)', r'neck.fpn_convs.{l3}.conv.\2'),
    (r'backbone\.top_block\.p6\.(\w+)', r'neck.fpn_convs.3.conv.\1'),
    (r'backbone\.top_block\.p7\.(\w+)', r'neck.fpn_convs.4.conv.\1'),
    (r'proposal_generator\.fcos_head\.(cls|bbox)_tower\.(\d+)\.(\w+)',
     r'bbox_head.{tower}'),
    (r'proposal_generator\.fcos_head\.cls_logits\.(\w+)',
     r'bbox_head.conv_cls.\1'),
    (r'proposal_generator\.fcos_head\.bbox_pred\.(\w+)',
     r'bbox_head.conv_reg.\1'),
    (r'proposal_generator\.fcos_head\.ctrness\.(\w+)',
     r'bbox_head.conv_centerness.\1'),
    (r'proposal_generator\.fcos_head\.scales\.(\d)\.scale',
     r'bbox_head.scales.\1.scale'),
    (r'roi_heads\.mask_head\.mask_fcn(\d)\.(\w+)',
     r'mask_head.convs.{k1}.conv.\2'),
    (r'roi_heads\.mask_head\.spatialAtt\.conv\.weight',
     r'mask_head.sam.conv.weight'),
    (r'roi_heads\.mask_head\.deconv\.(\w+)', r'mask_head.upsample.\1'),
    (r'roi_heads\.mask_head\.predictor\.(\w+)', r'mask_head.conv_logits.\1'),
    (r'roi_heads\.maskiou_head\.maskiou_fcn(\d)\.(\w+)',
     r'maskiou_head.convs.{k1}.\2'),
    (r'roi_heads\.maskiou_head\.maskiou_fc([12])\.(\w+)',
     r'maskiou_head.fcs.{k1}.\2'),
    (r'roi_heads\.maskiou_head\.maskiou\.(\w+)',
     r'maskiou_head.fc_mask_iou.\1'),
]
_RM_HEADS: List[Rule] = [
    (r'backbone\.fpn\.fpn_inner([234])\.(\w+)',
     r'neck.lateral_convs.{l2}.conv.\2'),
    (r'backbone\.fpn\.fpn_layer([234])\.(\w+)',
     r'neck.fpn_convs.{l2}.conv.\2'),
    (r'backbone\.fpn\.top_blocks\.p6\.(\w+)', r'neck.fpn_convs.3.conv.\1'),
    (r'backbone\.fpn\.top_blocks\.p7\.(\w+)', r'neck.fpn_convs.4.conv.\1'),
    (r'rpn\.head\.cls_tower\.(\d)\.(\w+)',
     r'bbox_head.cls_convs.{half}.conv.\2'),
    (r'rpn\.head\.bbox_tower\.(\d)\.(\w+)',
     r'bbox_head.reg_convs.{half}.conv.\2'),
    (r'rpn\.head\.cls_logits\.(\w+)', r'bbox_head.retina_cls.\1'),
    (r'rpn\.head\.bbox_pred\.(\w+)', r'bbox_head.retina_reg.\1'),
    (r'mask\.feature_extractor\.mask_fcn(\d)\.(\w+)',
     r'mask_head.convs.{k1}.conv.\2'),
    (r'mask\.predictor\.conv5_mask\.(\w+)', r'mask_head.upsample.\1'),
    (r'mask\.predictor\.mask_fcn_logits\.(\w+)', r'mask_head.conv_logits.\1'),
]


def _fill(template: str, m: re.Match) -> str:
    """Expand ``\\N`` groups and the computed fields of a rule."""
    out = m.expand(template)
    if '{' not in out:
        return out
    g = m.groups()
    fields = {}
    if '{res}' in out:
        fields['res'] = int(g[0]) - 1           # res2 -> layer1
    if '{l3}' in out:
        fields['l3'] = int(g[0]) - 3            # P3 -> index 0
    if '{l2}' in out:
        fields['l2'] = int(g[0]) - 2            # fpn_inner2 (C3) -> 0
    if '{k1}' in out:
        fields['k1'] = int(g[0]) - 1            # mask_fcn1 -> convs.0
    if '{half}' in out:
        fields['half'] = int(g[0]) // 2         # Sequential(conv, ReLU)
    if '{tower}' in out:
        # Sequential(conv, GN, ReLU) x 4 -> ConvModule(conv, gn) x 4.
        tower = 'cls_convs' if g[0] == 'cls' else 'reg_convs'
        layer, kind = divmod(int(g[1]), 3)
        part = {0: 'conv', 1: 'gn'}[kind]
        fields['tower'] = f'{tower}.{layer}.{part}.{g[2]}'
    return out.format(**fields)


def _apply(rules: List[Rule], key: str) -> str:
    for pattern, template in rules:
        m = re.fullmatch(pattern, key)
        if m:
            return _fill(template, m)
    raise KeyError(key)


def _unwrap(checkpoint: Dict) -> Dict[str, torch.Tensor]:
    for name in ('model', 'state_dict'):
        if isinstance(checkpoint.get(name), dict):
            checkpoint = checkpoint[name]
    return {k[len('module.'):] if k.startswith('module.') else k: v
            for k, v in checkpoint.items()}


def _convert(state: Dict[str, torch.Tensor], backbone_prefix: str,
             backbone: Callable[[Dict], Dict], heads: List[Rule],
             skip: Tuple[str, ...], source: str) -> 'OrderedDict':
    out: 'OrderedDict[str, torch.Tensor]' = OrderedDict()
    body = {k[len(backbone_prefix):]: v for k, v in state.items()
            if k.startswith(backbone_prefix)}
    for key, value in backbone(body).items():
        out[f'backbone.{key}'] = value
    for key, value in state.items():
        if key.startswith(backbone_prefix) or key.startswith(skip):
            continue
        try:
            out[_apply(heads, key)] = value
        except KeyError:
            raise ValueError(f'{source} checkpoint key {key!r} has no place '
                             f'in this model') from None
    return out


def _resnet(rules: List[Rule], source: str) -> Callable[[Dict], Dict]:
    def convert(body: Dict) -> Dict:
        out = OrderedDict()
        for key, value in body.items():
            try:
                out[_apply(rules, key)] = value
            except KeyError:
                raise ValueError(f'{source} backbone key {key!r} has no '
                                 f'place in mmdet\'s ResNet') from None
        return out
    return convert


def convert_centermask2(checkpoint: Dict) -> 'OrderedDict[str, torch.Tensor]':
    """A centermask2 checkpoint (R-50 or VoVNet) -> our ``CenterMask``."""
    state = _unwrap(checkpoint)
    prefix = 'backbone.bottom_up.'
    is_vovnet = any(k.startswith(prefix + 'stem.stem_1/') for k in state)
    backbone = (convert_vovnet_state_dict if is_vovnet
                else _resnet(_D2_RESNET, 'centermask2'))
    out = _convert(state, prefix, backbone, _CM2_HEADS, (), 'centermask2')
    for key in [k for k in out if k.startswith('bbox_head.scales.')]:
        out[key] = out[key].reshape(())  # mmcv's Scale holds a 0-d tensor
    return out


def convert_retinamask(checkpoint: Dict) -> 'OrderedDict[str, torch.Tensor]':
    """A chengyangfu/retinamask checkpoint -> our ``RetinaMask``.

    The mask logits' background row (maskrcnn-benchmark's class 0) is
    dropped: mmdet's 80 classes are its classes 1..80 in the same order.
    The box head's classifier already has 80 classes per anchor, anchor
    major, as mmdet's ``RetinaHead``.
    """
    state = _unwrap(checkpoint)
    out = _convert(state, 'backbone.body.', _resnet(_MB_RESNET, 'retinamask'),
                   _RM_HEADS, ('rpn.anchor_generator.',), 'retinamask')
    for name in ('mask_head.conv_logits.weight', 'mask_head.conv_logits.bias'):
        if name in out:
            out[name] = out[name][1:]
    return out


CONVERTERS = {'centermask2': convert_centermask2,
              'retinamask': convert_retinamask}
