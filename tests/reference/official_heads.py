"""Official heads' module structure and forward, for parity tests only.

Condensed from youngwanLEE/centermask2 (``centermask/modeling/centermask/
sam.py``: ``SpatialAttention``, ``SpatialAttentionMaskHead``;
``maskiou_head.py``: ``MaskIoUHead``) with detectron2's ``Conv2d`` written
as a conv followed by its activation. Module names, and so state-dict keys,
are the official ones. Each class names the file (and commit) it
transcribes: centermask2 @6adabd6, chengyangfu/retinamask @5bcf2e7.
"""
import torch
import torch.nn.functional as F
from torch import nn


class SpatialAttention(nn.Module):
    """centermask2 @6adabd6 ``centermask/modeling/centermask/sam.py``
    ``SpatialAttention`` (``__init__``, ``forward``: mean and max over
    channels, 3x3 conv without bias, sigmoid gate)."""

    def __init__(self, kernel_size=3):
        super().__init__()
        padding = 3 if kernel_size == 7 else 1
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=padding, bias=False)

    def forward(self, x):
        avg_out = torch.mean(x, dim=1, keepdim=True)
        max_out, _ = torch.max(x, dim=1, keepdim=True)
        return x * torch.sigmoid(self.conv(torch.cat([avg_out, max_out], 1)))


class SpatialAttentionMaskHead(nn.Module):
    """centermask2 @6adabd6 ``centermask/modeling/centermask/sam.py``
    ``SpatialAttentionMaskHead`` (``__init__``, ``layers``): ``mask_fcn{k}``
    conv + ReLU (no norm), ``spatialAtt``, ``deconv`` + ReLU, 1x1
    ``predictor``."""

    def __init__(self, input_channels, conv_dims, num_conv, num_classes):
        super().__init__()
        self.conv_norm_relus = []
        for k in range(num_conv):
            conv = nn.Conv2d(input_channels if k == 0 else conv_dims,
                             conv_dims, 3, 1, 1, bias=True)
            self.add_module(f'mask_fcn{k + 1}', conv)
            self.conv_norm_relus.append(conv)
        self.spatialAtt = SpatialAttention()
        self.deconv = nn.ConvTranspose2d(conv_dims, conv_dims, 2, 2, 0)
        self.predictor = nn.Conv2d(conv_dims, num_classes, 1, 1, 0)

    def forward(self, x):
        for layer in self.conv_norm_relus:
            x = F.relu(layer(x))
        x = self.spatialAtt(x)
        x = F.relu(self.deconv(x))
        return self.predictor(x)


class MaskIoUHead(nn.Module):
    """centermask2 @6adabd6 ``centermask/modeling/centermask/
    maskiou_head.py`` ``MaskIoUHead`` (``__init__``, ``forward``): the mask
    max-pooled 2x2 and concatenated last, ``maskiou_fcn{k}`` conv + ReLU
    (the last one stride 2), two FCs + ReLU, ``maskiou`` linear."""

    def __init__(self, input_channels, conv_dims, num_conv, num_classes,
                 resolution=14):
        super().__init__()
        self.conv_relus = []
        stride = 1
        for k in range(num_conv):
            if (k + 1) == num_conv:
                stride = 2
            conv = nn.Conv2d(input_channels + 1 if k == 0 else conv_dims,
                             conv_dims, 3, stride, 1)
            self.add_module(f'maskiou_fcn{k + 1}', conv)
            self.conv_relus.append(conv)
        self.maskiou_fc1 = nn.Linear(conv_dims * (resolution // 2)**2, 1024)
        self.maskiou_fc2 = nn.Linear(1024, 1024)
        self.maskiou = nn.Linear(1024, num_classes)
        self.pooling = nn.MaxPool2d(kernel_size=2, stride=2)

    def forward(self, x, mask):
        x = torch.cat((x, self.pooling(mask)), 1)
        for layer in self.conv_relus:
            x = F.relu(layer(x))
        x = torch.flatten(x, 1)
        x = F.relu(self.maskiou_fc1(x))
        x = F.relu(self.maskiou_fc2(x))
        return self.maskiou(x)


class Scale(nn.Module):
    """centermask2 @6adabd6 ``centermask/modeling/fcos/fcos.py``
    ``Scale``."""

    def __init__(self, init_value=1.0):
        super().__init__()
        self.scale = nn.Parameter(torch.FloatTensor([init_value]))

    def forward(self, x):
        return x * self.scale


class FCOSHead(nn.Module):
    """centermask2 @6adabd6 ``centermask/modeling/fcos/fcos.py``
    ``FCOSHead`` (``__init__``, ``forward``) with GN towers, no shared
    tower, no deformable conv; ``forward`` returns logits, ReLU'd
    regression in stride units, centerness (from the box tower)."""

    def __init__(self, in_channels, num_classes, num_convs, num_levels=5):
        super().__init__()
        for head in ('cls', 'bbox'):
            tower = []
            for _ in range(num_convs):
                tower.append(nn.Conv2d(in_channels, in_channels, 3, 1, 1,
                                       bias=True))
                tower.append(nn.GroupNorm(32, in_channels))
                tower.append(nn.ReLU())
            self.add_module(f'{head}_tower', nn.Sequential(*tower))
        self.cls_logits = nn.Conv2d(in_channels, num_classes, 3, 1, 1)
        self.bbox_pred = nn.Conv2d(in_channels, 4, 3, 1, 1)
        self.ctrness = nn.Conv2d(in_channels, 1, 3, 1, 1)
        self.scales = nn.ModuleList([Scale(1.0) for _ in range(num_levels)])

    def forward(self, x):
        logits, bbox_reg, ctrness = [], [], []
        for level, feature in enumerate(x):
            cls_tower = self.cls_tower(feature)
            bbox_tower = self.bbox_tower(feature)
            logits.append(self.cls_logits(cls_tower))
            ctrness.append(self.ctrness(bbox_tower))
            bbox_reg.append(F.relu(self.scales[level](
                self.bbox_pred(bbox_tower))))
        return logits, bbox_reg, ctrness


class RetinaMaskHeads(nn.Module):
    """chengyangfu/retinamask @5bcf2e7's RetinaNet head (``rpn.head``:
    ``maskrcnn_benchmark/modeling/rpn/retinanet.py`` ``RetinaNetHead``
    ``__init__``/``forward``, towers of conv + ReLU without GN,
    ``cls_logits``, ``bbox_pred``) and Mask R-CNN mask head
    (``modeling/roi_heads/mask_head/roi_mask_feature_extractors.py``
    ``MaskRCNNFPNFeatureExtractor``: ``mask.feature_extractor.mask_fcn1..4``
    conv + ReLU; ``roi_mask_predictors.py`` ``MaskRCNNC4Predictor``:
    ``mask.predictor.conv5_mask`` + ReLU, ``mask_fcn_logits`` with the
    background class 0), as module names."""

    def __init__(self, channels, num_classes, num_anchors=9, num_convs=4):
        super().__init__()
        self.rpn = nn.Module()
        self.rpn.head = nn.Module()
        for name in ('cls_tower', 'bbox_tower'):
            tower = []
            for _ in range(num_convs):
                tower += [nn.Conv2d(channels, channels, 3, 1, 1), nn.ReLU()]
            setattr(self.rpn.head, name, nn.Sequential(*tower))
        self.rpn.head.cls_logits = nn.Conv2d(
            channels, num_anchors * num_classes, 3, 1, 1)
        self.rpn.head.bbox_pred = nn.Conv2d(channels, num_anchors * 4, 3, 1, 1)
        self.mask = nn.Module()
        self.mask.feature_extractor = nn.Module()
        for k in range(1, 5):
            setattr(self.mask.feature_extractor, f'mask_fcn{k}',
                    nn.Conv2d(channels, channels, 3, 1, 1))
        self.mask.predictor = nn.Module()
        self.mask.predictor.conv5_mask = nn.ConvTranspose2d(channels,
                                                            channels, 2, 2, 0)
        self.mask.predictor.mask_fcn_logits = nn.Conv2d(channels,
                                                        num_classes + 1, 1)

    def box_head(self, x):
        head = self.rpn.head
        return head.cls_logits(head.cls_tower(x)), head.bbox_pred(
            head.bbox_tower(x))

    def mask_head(self, x):
        for k in range(1, 5):
            x = F.relu(getattr(self.mask.feature_extractor, f'mask_fcn{k}')(x))
        x = F.relu(self.mask.predictor.conv5_mask(x))
        return self.mask.predictor.mask_fcn_logits(x)
