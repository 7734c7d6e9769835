"""``make gpu-smoke``'s decisions: what a CUDA run is compared with, when
it fails, and what a machine without GPUs reports (no training here: the
runs themselves are ``run_grid.py``'s, tested elsewhere)."""
import pytest
import torch

from tests.helpers import load_script


@pytest.fixture(scope='module')
def smoke():
    return load_script('tools/gpu_smoke.py', 'gpu_smoke')


def _run(losses, status='finished'):
    return dict(status=status, error='a rank died', losses=losses,
                s_per_iter=0.5, images_per_process=2, placement='1 x 2 x 8')


def test_a_cuda_run_is_compared_with_the_cpu_run_of_its_seed(smoke):
    args = smoke.parse_args(['--compare-steps', '2'])
    ref = _run([2.0, 1.8, 1.7])
    # TF32 rounding: 0.5% apart at step 1 is the same computation.
    row = smoke._row('CenterMask R-50', '1 GPU', _run([2.01, 1.79, 1.5]),
                     ref, args)
    assert row['status'] == 'ok', row
    assert 'over 2 step(s): 5.0e-03, 5.6e-03' in row['result']
    assert '4.0 images/s per process' in row['result']
    # 10% apart at step 1: the CUDA path computes something else.
    row = smoke._row('CenterMask R-50', '1 GPU', _run([2.2, 1.8]), ref, args)
    assert row['status'] == 'FAILED'
    assert f'(step 1 > {smoke.LOSS_RTOL})' in row['result']


def test_a_failed_or_missing_run_is_a_failed_row(smoke):
    args = smoke.parse_args([])
    row = smoke._row('RetinaMask R-50', '2 GPUs (NCCL)',
                     _run([], status='failed'), _run([1.0]), args)
    assert row == dict(step='RetinaMask R-50, 2 GPUs (NCCL)',
                       status='FAILED', result='a rank died')
    assert smoke._row('x', '1 GPU', None, None, args)['status'] == 'FAILED'


@pytest.mark.skipif(torch.cuda.is_available(), reason='a CPU-only machine')
def test_a_machine_without_cuda_says_what_it_skipped(smoke, tmp_path):
    status = smoke.main(['--work-dir', str(tmp_path),
                         '--data-root', str(tmp_path / 'no_coco128')])
    table = (tmp_path / 'gpu_smoke.md').read_text()
    assert status == 0
    assert 'ok (CPU only)' in table
    assert 'no CUDA device (torch.cuda.is_available() is False)' in table
    assert 'no_coco128: no coco128-seg' in table
