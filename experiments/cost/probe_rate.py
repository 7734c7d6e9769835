"""Time a few training iterations of a run config (``plan_cost.probe``).

    python -m experiments.cost.probe_rate DIR --iters 10 --warmup 2 \
        --out rate.json

``DIR`` holds the run's resolved ``config.py`` (a temporary directory: a
probe never writes into a run dir). The config is prepared as a run's is
(``train_run.prepare_config``), its loop cut to ``warmup + iters``
iterations without checkpoints or LR schedule (neither changes the speed of
an iteration), trained, then tested on at most ``--eval-images`` validation
images. Written: seconds from the start to the first iteration
(``setup_s``), seconds per iteration after the warm-up, evaluation seconds
per image and peak memory.
"""
import argparse
import json
import resource
import time

import torch
from mmengine.hooks import Hook

from experiments.runner.train_run import build_runner, prepare_config

# After train_run.py's imports, as a run's wall_time_s (its attempt starts
# counting once they are done; mmdet and the plugins come after, with the
# config). Imported after this, they added 1-2 s to every setup_s.
t_start = time.time()


class _Clock(Hook):
    priority = 'VERY_HIGH'

    def __init__(self):
        self.starts, self.ends = [], []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.starts.append(time.time())

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.ends.append(time.time())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('dir')
    parser.add_argument('--iters', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--eval-images', type=int, default=50)
    parser.add_argument('--out', required=True)
    args = parser.parse_args()

    cfg = prepare_config(args.dir)
    # A mask branch on the dense head's detections (CenterMask, RetinaMask)
    # costs what its RoIs cost; a model from scratch has none above the
    # score threshold in its first iterations, a trained one its full
    # post-NMS top-k. The probe times the latter, the steady state of a run.
    mask_train = (cfg.model.get('train_cfg') or {}).get('mask') or {}
    if 'score_thr' in mask_train:
        mask_train['score_thr'] = 0.0
    # The run's own loop where it counts iterations (its per-iteration
    # work is the run's); an epoch loop becomes mmengine's iteration loop.
    loop = cfg.train_cfg.get('type', '')
    cfg.train_cfg = dict(
        type=loop if 'IterBased' in loop else 'IterBasedTrainLoop',
        max_iters=args.warmup + args.iters, val_interval=10**9)
    cfg.param_scheduler = []
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook',
                                        interval=10**9, save_last=False)
    cfg.train_dataloader.sampler = dict(type='InfiniteSampler', shuffle=True)
    cfg.test_dataloader.dataset['indices'] = args.eval_images
    runner = build_runner(cfg)
    clock = _Clock()
    runner.register_hook(clock)
    runner.train()
    t_test = time.time()
    runner.test()
    eval_s = time.time() - t_test
    n_eval = len(runner.test_dataloader.dataset)
    timed = clock.ends[-1] - clock.ends[args.warmup - 1] if args.warmup \
        else clock.ends[-1] - clock.starts[0]
    from experiments.cost.model_cost import device_name  # imports mmdet
    cuda = torch.cuda.is_available()
    peak = (torch.cuda.max_memory_allocated() / 2**20 if cuda else
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    with open(args.out, 'w') as f:
        json.dump(dict(
            device=device_name('cuda' if cuda else 'cpu'),
            setup_s=round(clock.starts[0] - t_start, 3),
            s_per_iter=round(timed / args.iters, 4),
            eval_s_per_image=round(eval_s / n_eval, 4),
            peak_mem_mb=round(peak, 1),
            measured_at=time.strftime('%Y-%m-%d')), f)


if __name__ == '__main__':
    main()
