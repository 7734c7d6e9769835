"""A tracker is added to a run's visualizer at training time only."""
from mmengine.config import Config

from experiments.runner.train_run import add_tracker


def test_tracker_is_added_at_training_time_only():
    cfg = Config(dict(visualizer=dict(
        type='DetLocalVisualizer',
        vis_backends=[dict(type='LocalVisBackend')])))
    add_tracker(cfg, dict(tracker='none'))
    assert [b['type'] for b in cfg.visualizer.vis_backends] == [
        'LocalVisBackend']
    add_tracker(cfg, dict(tracker='mlflow', grid='g', model='m', arm='a',
                          dataset='d', seed=0))
    assert cfg.visualizer.vis_backends[-1] == dict(
        type='MLflowVisBackend', exp_name='g', run_name='m/a/d/seed0')
