# Iteration-based schedule for CPU smoke runs: warm-up, then a constant LR.
# Evaluation happens once, after training (run_grid.py calls runner.test()).
# ResumableIterBasedTrainLoop: mmengine's loop, resumed without re-loading
# the batches already trained on (mmdet_plugins/engine/resumable_loop.py).
max_iters = 200
train_cfg = dict(
    type='ResumableIterBasedTrainLoop', max_iters=max_iters,
    val_interval=10**9)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=50),
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0001),
    # From-scratch training at batch 4 spikes early; clipping keeps it finite.
    clip_grad=dict(max_norm=10, norm_type=2))
auto_scale_lr = dict(enable=False, base_batch_size=4)


# The recipe the tiny configs are written for
# (experiments/grid/batch_recipe.py): the built-in dataset's batch of 4 at
# LR 0.02. No paper trains these; the
# numbers are this project's, for CPU smoke runs.
paper_recipe = dict(
    total_batch=4, lr=0.02, warmup_iters=50, warmup_factor=0.01,
    warmup_method='linear', max_iters=200, milestones=[],
    source="this project's CPU smoke recipe (configs/_base_/schedules/"
           "tiny_iters.py; no paper)")
