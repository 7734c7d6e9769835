# mmdet's default runtime plus the project's, with iteration-based logging
# and checkpoints for short CPU runs (resume needs a checkpoint to exist).
_base_ = ['mmdet::_base_/default_runtime.py', './plugins_runtime.py']

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=50,
        max_keep_ckpts=2, save_last=True))
log_processor = dict(type='LogProcessor', window_size=10, by_epoch=False)
