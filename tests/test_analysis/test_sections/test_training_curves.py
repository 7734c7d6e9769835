"""Training curves: scalars of a resumed run."""
import json

import pytest

from analysis.sections.training_curves import read_scalars


def test_scalars_of_a_resumed_run_are_joined_by_step(tmp_path):
    for stamp, records in (
            ('20260101_000000', [dict(step=10, loss=2.0, lr=0.01),
                                 dict(step=20, loss=1.5, lr=0.01)]),
            ('20260101_010000', [dict(step=20, loss=1.4, lr=0.01),
                                 dict(step=30, loss=1.0, lr=0.001,
                                      sasl1_beta_dx=0.1, sasl1_beta_dy=0.1,
                                      sasl1_beta_dw=0.05,
                                      sasl1_beta_dh=0.05),
                                 {'coco/bbox_mAP': 0.25, 'step': 30}])):
        vis = tmp_path / stamp / 'vis_data'
        vis.mkdir(parents=True)
        (vis / 'scalars.json').write_text(
            '\n'.join(json.dumps(r) for r in records) + '\n{"cut')
    df = read_scalars(str(tmp_path))
    assert df.step.tolist() == [10, 20, 30]
    assert df.loss.tolist() == [2.0, 1.4, 1.0]  # the later attempt wins
    assert df['coco/bbox_mAP'].iloc[-1] == 0.25
    assert df['sasl1_beta (mean)'].iloc[-1] == pytest.approx(0.075)
