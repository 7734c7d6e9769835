# Project runtime settings shared by every config of this repository.
# - registers mmdet_plugins' modules;
# - TrustedCheckpointRunner resumes its own checkpoints under torch>=2.6;
# - FiniteLossHook stops a run with a clear error on a NaN/inf loss;
# - BackboneInitCheckHook refuses norm_eval / frozen stages on a backbone
#   without pretrained weights (allow_untrained_frozen_backbone=True allows);
# - RandomStateHook saves each rank's random state with every checkpoint and
#   restores it on resume, so a resumed run ends as the uninterrupted one;
# - StopCheckpointHook: SIGTERM / Slurm's USR2 during training saves a
#   checkpoint at the current iteration before the process stops.
custom_imports = dict(imports=['mmdet_plugins'], allow_failed_imports=False)
runner_type = 'TrustedCheckpointRunner'
custom_hooks = [dict(type='FiniteLossHook', interval=1),
                dict(type='BackboneInitCheckHook'),
                dict(type='RandomStateHook'),
                dict(type='StopCheckpointHook')]
