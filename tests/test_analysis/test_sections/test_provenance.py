"""The report says what makes its arms differ, from each run's run.json."""
import json

import pandas as pd

from analysis.sections.provenance import arm_differences


def _run(tmp_path, name, **meta):
    run_dir = tmp_path / name
    run_dir.mkdir()
    (run_dir / 'run.json').write_text(json.dumps(meta))
    return str(run_dir)


def test_arms_are_told_apart_by_description_and_differing_overrides(
        tmp_path):
    shared = {'train_cfg.max_iters': 200}
    eq1 = _run(tmp_path, 'a', arm_description='Eq. 1 levels',
               overrides=dict(shared, **{'roi.mapping': 'eq1'}))
    eq2 = _run(tmp_path, 'b', arm_description='',
               overrides=dict(shared, **{'roi.mapping': 'eq2',
                                         'roi.k_min': 3}))
    eq2_seed1 = _run(tmp_path, 'c', overrides={})
    df = pd.DataFrame([
        dict(model='cm', arm='eq1', work_dir=eq1),
        dict(model='cm', arm='eq2', work_dir=eq2),
        dict(model='cm', arm='eq2', work_dir=eq2_seed1),  # first run counts
        dict(model='cm', arm='missing', work_dir=''),      # not run
    ])
    text = arm_differences(df)
    # The shared override is no difference; a key only one arm sets is.
    assert text == ("Arms (from each run's run.json): "
                    "cm/eq1: Eq. 1 levels; `roi.k_min` not set, "
                    "`roi.mapping='eq1'` | "
                    "cm/eq2: `roi.k_min=3`, `roi.mapping='eq2'`")


def test_one_arm_without_description_adds_nothing(tmp_path):
    only = _run(tmp_path, 'a', arm_description='',
                overrides={'train_cfg.max_iters': 200})
    df = pd.DataFrame([dict(model='m', arm='default', work_dir=only)])
    assert arm_differences(df) is None
