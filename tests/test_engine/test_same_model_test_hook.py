"""What each rank tests, and when a resumed row may say ``resume_exact=yes``
(issue 39, item 2; the 2-process runs are in
``tests/test_experiments/test_runner/test_resumed_rank_evaluation.py``)."""
import json
import os.path as osp

import torch
from torch import nn

from experiments.runner.resume_row import resume_columns
from mmdet_plugins.engine.random_state import (model_digest,
                                               optimizer_digest,
                                               state_digest)
from mmdet_plugins.engine.random_state_hook import REPORT_FILE
from mmdet_plugins.engine.same_model_test_hook import (
    SameModelTestHook, share_rank0_model, evaluated_state_problems)


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))


def test_the_digest_sees_every_bit_of_parameters_and_buffers():
    a, b = _model(), _model()
    assert model_digest(a) == model_digest(b)
    b[1].running_var[2] += 1e-7      # a BN statistic, not a parameter
    assert model_digest(a) != model_digest(b)
    b = _model()
    b[1].num_batches_tracked += 1    # a 0-d integer buffer
    assert model_digest(a) != model_digest(b)
    assert state_digest({'x': torch.zeros(2)}) != \
        state_digest({'x': torch.zeros(2, dtype=torch.float64)})
    assert state_digest([1, 2]) != state_digest([2, 1])


def test_the_optimizer_digest_is_its_state_not_its_lr():
    model = _model()
    sgd = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.ones(2, 3, 5, 5)).sum().backward()
    sgd.step()
    before = optimizer_digest(sgd)
    sgd.param_groups[0]['lr'] = 0.05     # a scheduler's business
    assert optimizer_digest(sgd) == before
    sgd.state[model[0].weight]['momentum_buffer'][0] += 1
    assert optimizer_digest(sgd) != before


def test_one_process_tests_its_model_as_it_is():
    model = _model()
    digest = model_digest(model)
    share_rank0_model(model)
    assert model_digest(model) == digest


def test_after_training_test_reloads_no_checkpoint():
    class Runner:
        _has_loaded = False
    runner = Runner()
    SameModelTestHook().after_train(runner)
    assert runner._has_loaded is True


def test_ranks_that_tested_other_states_are_named():
    assert evaluated_state_problems(['a:x', 'a:x'], 'a') == []
    assert evaluated_state_problems(['a:x', 'a:x'], None) == []
    assert evaluated_state_problems(['a:x', 'a:y', 'a:x'], None) == [
        'rank 1 tested other parameters or buffers than rank 0']
    assert evaluated_state_problems(['a:x'], 'b') == [
        'the tested model is not the one its last checkpoint saved']
    assert evaluated_state_problems(None, 'a') == [
        'the model state each rank tested was not recorded']


def _resumed_once(work_dir, exact=True, reasons=()):
    with open(osp.join(work_dir, REPORT_FILE), 'w') as f:
        json.dump(dict(exact=exact, resumes=[dict(
            kind='iter', step=2, exact=exact, reasons=list(reasons))]), f)


def test_resume_exact_is_yes_only_when_every_rank_tested_the_saved_model(
        tmp_path):
    assert resume_columns(str(tmp_path), []) == dict(resumed_from='',
                                                     resume_exact='')
    _resumed_once(str(tmp_path))
    assert resume_columns(str(tmp_path), []) == dict(
        resumed_from='iter 2', resume_exact='yes')
    # Training resumed exactly, but rank 1 tested its own BN statistics.
    row = resume_columns(str(tmp_path), evaluated_state_problems(
        ['a:x', 'b:y'], 'a'))
    assert row['resume_exact'] == ('no: rank 1 tested other parameters or '
                                   'buffers than rank 0')
    assert resume_columns(str(tmp_path))['resume_exact'] == \
        'no: evaluation not checked'
    _resumed_once(str(tmp_path), exact=False, reasons=['rank 1: lost'])
    assert resume_columns(str(tmp_path), [])['resume_exact'] == \
        'no: rank 1: lost'
