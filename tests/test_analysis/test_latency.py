"""Latency comparisons on synthetic per-image timings with a known effect."""
import json

import numpy as np
import pandas as pd
import pytest

from analysis.evidence import latency_difference
from analysis.latency import latency_estimate, paired_latency
from analysis.verdicts import judge
from experiments.store import cost_columns

W10 = dict(claim='a is faster than b', kind='less', metric='latency_ms',
           device='gpu', a=dict(grid='g', model='a', arm='default'),
           b=dict(grid='g', model='b', arm='default'))



def _evidence(n_resamples):
    """The report's latency evidence (analysis.evidence.make_evidence)."""
    def evidence(a, b, metric):
        est = paired_latency(a, b, n_resamples)
        return None if est is None else latency_difference(est)
    return evidence

def _timed_run(tmp_path, name, per_image, device='cuda:0',
               device_name='NVIDIA H100', round_offsets=(0.0,)):
    """A finished run whose cost.json holds ``per_image`` timings, shifted
    by ``round_offsets[r]`` ms in timing round r."""
    run_dir = tmp_path / name
    run_dir.mkdir()
    rounds = [{str(i): float(ms) + off for i, ms in enumerate(per_image)}
              for off in round_offsets]
    per_image = {k: float(np.median([r[k] for r in rounds]))
                 for k in rounds[0]}
    cost = dict(flops=2e9, backbone_flops=1e9, device=device,
                device_name=device_name, per_image_ms=per_image,
                per_round_ms=rounds,
                latency_ms=float(np.median(list(per_image.values()))))
    (run_dir / 'cost.json').write_text(json.dumps(cost))
    row = dict(grid='g', model=name.split('_')[0], arm='default',
               dataset='coco2017', seed=0, status='finished', run_id=name,
               val_images=5000, work_dir=str(run_dir))
    row.update(cost_columns(str(run_dir)))
    return pd.DataFrame([row])


def _images(n=300, seed=0):
    """Right-skewed per-image times: what a detector's timings look like."""
    rng = np.random.default_rng(seed)
    return 40 + rng.gamma(2.0, 5.0, n)


def test_paired_difference_recovers_an_injected_speedup(tmp_path):
    base = _images()
    rng = np.random.default_rng(1)
    a = _timed_run(tmp_path, 'a_run', base - 6 + rng.normal(0, 0.5, 300))
    b = _timed_run(tmp_path, 'b_run', base)
    est = paired_latency(a, b, n_resamples=400)
    assert est.n_images == 300 and est.n_seeds == 1
    assert est.hi < 0 and est.lo < -6 < est.hi + 1
    v = judge('W10', W10, pd.concat([a, b]),
              _evidence(400))
    assert v.verdict == 'supported' and ' ms [' in v.effect


def test_no_effect_gives_an_interval_around_zero(tmp_path):
    base = _images(seed=2)
    rng = np.random.default_rng(3)
    a = _timed_run(tmp_path, 'a_run', base + rng.normal(0, 0.5, 300))
    b = _timed_run(tmp_path, 'b_run', base)
    est = paired_latency(a, b, n_resamples=400)
    assert est.lo < 0 < est.hi
    v = judge('W10', W10, pd.concat([a, b]),
              _evidence(400))
    assert v.verdict == 'inconclusive'


def test_single_arm_interval_brackets_its_median_and_stays_positive(
        tmp_path):
    x = _images(seed=4)
    x[:5] = 900  # a few very slow images
    run = _timed_run(tmp_path, 'a_run', x)
    est = latency_estimate(run, n_resamples=400)
    assert est.value == pytest.approx(np.median(x))
    assert 0 < est.lo <= est.value <= est.hi


def test_cpu_timings_give_no_verdict_on_a_gpu_claim(tmp_path):
    base = _images()
    a = _timed_run(tmp_path, 'a_run', base - 10, device='cpu',
                   device_name='Xeon (2 threads)')
    b = _timed_run(tmp_path, 'b_run', base, device='cpu',
                   device_name='Xeon (2 threads)')
    v = judge('W10', W10, pd.concat([a, b]),
              _evidence(200))
    assert v.verdict == 'inconclusive'
    assert 'would say supported' in v.sentence and 'cpu: Xeon' in v.sentence


def test_arms_timed_on_different_devices_are_not_compared(tmp_path):
    base = _images()
    a = _timed_run(tmp_path, 'a_run', base - 10, device_name='NVIDIA H100')
    b = _timed_run(tmp_path, 'b_run', base, device_name='NVIDIA A100')
    assert paired_latency(a, b) is None
    v = judge('W10', W10, pd.concat([a, b]),
              _evidence(200))
    assert v.verdict == 'inconclusive' and 'Not comparable' in v.sentence


def test_runs_without_timings_name_the_command(tmp_path):
    a = _timed_run(tmp_path, 'a_run', _images())
    b = _timed_run(tmp_path, 'b_run', _images())
    a['latency_ms'] = np.nan
    v = judge('W10', dict(W10, needs='GPU latency (measure_cost.py)'),
              pd.concat([a, b]))
    assert v.verdict == 'not run' and 'measure_cost.py' in v.sentence


def test_drift_between_rounds_widens_the_interval(tmp_path):
    """Arm a's speed wanders by +-4 ms between rounds, b's does not: the
    images alone would give a tight interval, but with four rounds the
    wander is noise the interval must carry."""
    base = _images(n=200, seed=5)
    steady = _timed_run(tmp_path, 'b_run', base,
                        round_offsets=(0, 0, 0, 0))
    wander = _timed_run(tmp_path, 'a_run', base,
                        round_offsets=(4, -4, 3, -3))
    one_round = _timed_run(tmp_path, 'c_run', base + 4)
    tight = paired_latency(one_round, steady, n_resamples=400)
    wide = paired_latency(wander, steady, n_resamples=400)
    assert tight.lo > 0  # one round at +4 ms looks like a real slowdown
    assert wide.lo < 0 < wide.hi
    assert (wide.hi - wide.lo) > 3 * (tight.hi - tight.lo)


def test_common_drift_cancels_in_a_paired_difference(tmp_path):
    """Both arms slowed by the same amount in each round (timed in the
    same pass): a real 5 ms gap stays resolved."""
    base = _images(n=200, seed=6)
    drift = (6, -6, 4, -4)
    a = _timed_run(tmp_path, 'a_run', base + 5, round_offsets=drift)
    b = _timed_run(tmp_path, 'b_run', base, round_offsets=drift)
    est = paired_latency(a, b, n_resamples=400)
    assert 3 < est.lo and est.hi < 7
