"""SAG-Mask: Mask R-CNN's mask head with spatial attention (CenterMask)."""
import copy

from mmdet.models.roi_heads.mask_heads import FCNMaskHead
from mmdet.registry import MODELS
from mmdet.utils import OptMultiConfig
from mmengine.model import BaseModule
from torch import Tensor

from ..layers import SpatialAttention


@MODELS.register_module()
class SAGMaskHead(FCNMaskHead):
    """Spatial attention-guided mask head.

    RoI features (14x14) -> ``num_convs`` x (3x3 conv, ReLU) -> SAM (when
    ``use_sam``) -> 2x2 stride-2 deconv + ReLU (28x28) -> 1x1 conv to
    class-specific mask logits. Loss: Mask R-CNN's per-pixel BCE on the GT
    class. ``num_convs=4, conv_out_channels=256`` is CenterMask;
    ``num_convs=2, conv_out_channels=128`` is CenterMask-Lite.
    ``use_sam=False`` has mmdet's ``FCNMaskHead`` layers (Table 1's "+ mask
    head").

    Initialisation (``init_cfg``, default centermask2's
    ``SpatialAttentionMaskHead``, ``centermask/modeling/centermask/
    mask_head.py`` / ``sam.py`` @6adabd6): convs, deconv and the SAM conv
    Kaiming normal, fan_out, ReLU gain, bias 0 (``c2_msra_fill``); the 1x1
    predictor N(0, 0.001), bias 0. mmdet's ``FCNMaskHead`` (and CM1's
    ``MaskRCNNC4Predictor``) draw the predictor as the convs instead. A
    ``Pretrained`` ``init_cfg`` (or a checkpoint loaded afterwards) replaces
    all of it.

    Args:
        use_sam: Apply the spatial attention module after the convs.
        init_cfg: mmengine init config; ``FCNMaskHead``'s own fixed
            initialisation is not applied (its ``ConvModule`` convs still
            re-draw themselves afterwards, the same Kaiming fan_out).
        **kwargs: As ``FCNMaskHead``.
    """

    def __init__(self, use_sam: bool = True,
                 init_cfg: OptMultiConfig = dict(
                     type='Kaiming', layer=['Conv2d', 'ConvTranspose2d'],
                     mode='fan_out', nonlinearity='relu',
                     distribution='normal', bias=0,
                     override=dict(type='Normal', name='conv_logits',
                                   std=0.001, bias=0)),
                 **kwargs) -> None:
        # FCNMaskHead refuses an init_cfg: it hard-codes its own init.
        super().__init__(**kwargs)
        self.init_cfg = copy.deepcopy(init_cfg)
        self.use_sam = use_sam
        self.sam = SpatialAttention() if use_sam else None

    def init_weights(self) -> None:
        """Apply ``init_cfg`` (then the submodules' own ``init_weights``),
        without ``FCNMaskHead``'s Kaiming re-draw of the predictor."""
        BaseModule.init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        for conv in self.convs:
            x = conv(x)
        if self.sam is not None:
            x = self.sam(x)
        if self.upsample is not None:
            x = self.upsample(x)
            if self.upsample_method == 'deconv':
                x = self.relu(x)
        return self.conv_logits(x)
