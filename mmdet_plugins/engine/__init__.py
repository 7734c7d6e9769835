from .finite_loss_hook import FiniteLossHook
from .trusted_checkpoint import (TrustedCheckpointRunner,
                                 trust_checkpoints_under)

__all__ = ['FiniteLossHook', 'TrustedCheckpointRunner',
           'trust_checkpoints_under']
