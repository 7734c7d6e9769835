from .backbone_init_check import (BackboneInitCheckHook,
                                  untrained_frozen_backbone)
from .finite_loss_hook import FiniteLossHook
from .trusted_checkpoint import (TrustedCheckpointRunner,
                                 trust_checkpoints_under)

__all__ = ['BackboneInitCheckHook', 'FiniteLossHook', 'TrustedCheckpointRunner',
           'trust_checkpoints_under', 'untrained_frozen_backbone']
