from .accumulated_param_scheduler_hook import AccumulatedParamSchedulerHook
from .any_device_ddp import AnyDeviceDistributedDataParallel
from .backbone_init_check import (BackboneInitCheckHook,
                                  untrained_frozen_backbone)
from .finite_loss_hook import FiniteLossHook
from .random_state_hook import RandomStateHook
from .rank_loss_log_hook import RankLossLogHook
from .resumable_loop import ResumableBatchSampler, ResumableIterBasedTrainLoop
from .same_model_test_hook import SameModelTestHook
from .stop_checkpoint_hook import StopCheckpointHook
from .trusted_checkpoint import (TrustedCheckpointRunner,
                                 trust_checkpoints_under)

__all__ = ['AccumulatedParamSchedulerHook', 'AnyDeviceDistributedDataParallel',
           'BackboneInitCheckHook', 'FiniteLossHook', 'RandomStateHook',
           'RankLossLogHook', 'ResumableBatchSampler',
           'ResumableIterBasedTrainLoop', 'SameModelTestHook',
           'StopCheckpointHook',
           'TrustedCheckpointRunner',
           'trust_checkpoints_under', 'untrained_frozen_backbone']
