# Iteration-based schedule for CPU smoke runs: warm-up, then a constant LR.
# Evaluation happens once, after training (run_grid.py calls runner.test()).
max_iters = 200
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=10**9)
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

