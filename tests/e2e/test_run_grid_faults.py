"""Damaged files, bad grid values, a full or read-only disk: one clear line,
and no results row lost or counted twice (issue 16)."""
import json
import os
import os.path as osp
import shutil
import subprocess

import pytest
from helpers import TINY_OVERRIDES, write_grid

from analysis.coco_eval.eval_cache import CACHE_DIR
from experiments import run_grid
from experiments.store import (
    load_results_table,
    read_attempts,
    read_results_csv,
)

# Checkpoints at 2 and 4 (tiny_runtime keeps two): a damaged latest one has
# an intact one before it.
FOUR = {**TINY_OVERRIDES, 'train_cfg.max_iters': 4}


def _results(work_dir):
    return read_results_csv(osp.join(work_dir, 'results.csv'))


def _run_dirs(work_dir):
    return sorted(osp.join(work_dir, n) for n in os.listdir(work_dir)
                  if osp.isfile(osp.join(work_dir, n, 'run.json')))


@pytest.fixture(scope='module')
def two_seeds(tiny_builtin, tmp_path_factory):
    """A finished grid of two runs (seeds 0 and 1), 4 iterations each."""
    tmp = tmp_path_factory.mktemp('faults')
    work_dir = tmp / 'work'
    grid = write_grid(tmp / 'grid.yaml', work_dir, tiny_builtin,
                      {'default': {}}, seeds=[0, 1], overrides=FOUR)
    assert run_grid.main([grid]) == 0
    return tmp, str(work_dir)


@pytest.fixture
def copy_of(two_seeds, tmp_path, tiny_builtin):
    """A private copy of the finished grid, and its grid file."""
    src_tmp, src_work = two_seeds
    work_dir = tmp_path / 'work'
    shutil.copytree(src_work, work_dir, symlinks=True)
    # The run dirs name their work dir inside; the copies point at the copy.
    for run_dir in _run_dirs(str(work_dir)):
        for name in ('FINISHED.json', 'last_checkpoint'):
            path = osp.join(run_dir, name)
            if osp.isfile(path):
                with open(path) as f:
                    text = f.read()
                with open(path, 'w') as f:
                    f.write(text.replace(src_work, str(work_dir)))
    results = work_dir / 'results.csv'
    results.write_text(results.read_text().replace(src_work, str(work_dir)))
    grid = write_grid(tmp_path / 'grid.yaml', work_dir, tiny_builtin,
                      {'default': {}}, seeds=[0, 1], overrides=FOUR)
    return grid, str(work_dir)


def test_a_filtered_invocation_keeps_every_run_of_the_grid(copy_of, capsys):
    grid, work_dir = copy_of
    before = _results(work_dir)
    assert run_grid.main([grid, '--only', 'seed=0']) == 0
    after = _results(work_dir)
    # It once shrank to the filtered runs; the report called the rest
    # "not run".
    assert list(after.seed) == [0, 1]
    assert list(after.status) == ['finished', 'finished']
    assert list(after.run_id) == list(before.run_id)
    assert 'lists all 2 run(s) of the grid on disk; this invocation runs 1' \
        in capsys.readouterr().out


def test_bad_schedule_value_names_key_and_leaves_results_alone(
        copy_of, tiny_builtin, tmp_path, capsys):
    _, work_dir = copy_of
    before = open(osp.join(work_dir, 'results.csv')).read()
    bad = write_grid(tmp_path / 'bad.yaml', work_dir, tiny_builtin,
                     {'default': {}}, seeds=[0, 1],
                     overrides={**FOUR, 'train_cfg.max_iters': 'twenty'})
    assert run_grid.main([bad]) == 2
    err = capsys.readouterr().err
    assert "train_cfg.max_iters must be a positive integer, got 'twenty'" \
        in err
    assert 'nothing was run' in err
    # It once crashed here after rewriting results.csv to its header alone.
    assert open(osp.join(work_dir, 'results.csv')).read() == before


def test_damaged_finished_json_is_named_and_the_run_evaluated_again(
        copy_of, capsys):
    grid, work_dir = copy_of
    run_dir = _run_dirs(work_dir)[0]
    good = json.load(open(osp.join(run_dir, 'FINISHED.json')))
    with open(osp.join(run_dir, 'FINISHED.json'), 'w') as f:
        f.write('{"status": "finis')
    df = load_results_table(osp.join(work_dir, 'results.csv'))
    assert len(df) == 2

    assert run_grid.main([grid, '--dry-run']) == 0
    out = capsys.readouterr().out
    assert 'damaged' in out and 'FINISHED.json does not read back' in out

    assert run_grid.main([grid]) == 0
    err = capsys.readouterr().err
    assert 'FINISHED.json was damaged (kept as FINISHED.json.damaged-' in err
    again = json.load(open(osp.join(run_dir, 'FINISHED.json')))
    # Evaluated again from the final checkpoint: the same numbers, no
    # training (iteration 4 still), and the table lists the run once.
    assert again['box_AP'] == pytest.approx(good['box_AP'], abs=1e-9)
    assert again['mask_AP'] == pytest.approx(good['mask_AP'], abs=1e-9)
    assert again['iterations'] == 4
    assert any(n.startswith('FINISHED.json.damaged-')
               for n in os.listdir(run_dir))
    df = _results(work_dir)
    assert list(df.status) == ['finished', 'finished']


@pytest.mark.parametrize('garbage', [b'\x89PNG\r\n\x1a\n\x00\x00\xff\xfe',
                                     b'not,a\nresults,table\n'])
def test_damaged_results_csv_is_rebuilt_from_the_run_dirs(copy_of, garbage,
                                                          capsys):
    _, work_dir = copy_of
    path = osp.join(work_dir, 'results.csv')
    before = _results(work_dir)
    with open(path, 'wb') as f:
        f.write(garbage)
    df = load_results_table(path)
    assert f'{path}: damaged results table' in capsys.readouterr().err
    assert list(df.run_id) == list(before.run_id)
    assert list(df.box_AP) == list(before.box_AP)


def test_damaged_results_csv_with_nothing_to_rebuild_from(tmp_path):
    from experiments.store import DamagedFileError
    path = tmp_path / 'results.csv'
    path.write_bytes(b'\x00\xff garbage')
    with pytest.raises(DamagedFileError, match=str(path)):
        load_results_table(str(path))


def test_report_rebuilds_a_damaged_results_csv(copy_of, capsys):
    from reports import generate_report
    grid, work_dir = copy_of
    with open(osp.join(work_dir, 'results.csv'), 'wb') as f:
        f.write(b'\xff\xfe\x00garbage')
    assert generate_report.main(['--grid', grid, '--resamples', '20',
                                 '--no-other-grids']) == 0
    assert 'damaged results table' in capsys.readouterr().err
    assert len(_results(work_dir)) == 2


def test_report_survives_damaged_detections_and_a_garbage_tide_cache(
        copy_of, capsys):
    from reports import generate_report
    grid, work_dir = copy_of
    args = ['--grid', grid, '--resamples', '20', '--no-other-grids']
    assert generate_report.main(args) == 0  # fills the TIDE caches
    capsys.readouterr()
    damaged_run, cached_run = _run_dirs(work_dir)
    detections = osp.join(damaged_run, 'detections', 'val.bbox.json')
    with open(detections, 'r+b') as f:
        f.truncate(osp.getsize(detections) // 2)
    cache_dir = osp.join(cached_run, 'detections', CACHE_DIR)
    [tide_cache] = [osp.join(cache_dir, n) for n in os.listdir(cache_dir)
                    if n.startswith('tide-bbox-')]
    with open(tide_cache, 'w') as f:
        f.write('{"rows": [tru')
    assert generate_report.main(args) == 0
    err = capsys.readouterr().err
    assert f'{detections}: not valid JSON' in err
    assert f'{tide_cache}: damaged TIDE cache' in err
    report_dir = osp.join(work_dir, 'report')
    md = open(osp.join(report_dir, 'report.md')).read()
    assert '## Damaged runs' in md and f'{detections}: not valid JSON' in md
    # The previous build is kept under a name that says it is old.
    assert osp.isfile(osp.join(report_dir, 'report.previous.html'))
    # The garbage cache was recomputed and replaced.
    assert json.load(open(tide_cache))['rows']


def test_report_into_a_read_only_place_is_one_line(copy_of, tmpfs, capsys):
    from reports import generate_report
    grid, _ = copy_of
    mount, remount = tmpfs
    os.makedirs(osp.join(mount, 'report'))
    remount('ro')
    assert generate_report.main(['--grid', grid, '--resamples', '20',
                                 '--no-other-grids', '--out',
                                 osp.join(mount, 'report')]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f'error: cannot write the report in '
                              f'{mount}/report: Read-only file system')


def test_truncated_latest_checkpoint_falls_back_to_the_previous_one(
        copy_of, capsys):
    grid, work_dir = copy_of
    run_dir = _run_dirs(work_dir)[0]
    # An attempt killed while saving iteration 4: the run is unfinished and
    # its newest checkpoint is cut short.
    os.remove(osp.join(run_dir, 'FINISHED.json'))
    latest = osp.join(run_dir, 'iter_4.pth')
    size = osp.getsize(latest)
    with open(latest, 'r+b') as f:
        f.truncate(size // 2)
    assert run_grid.main([grid]) == 0
    log = open(osp.join(run_dir, 'run.log')).read()
    assert f'{latest}: damaged checkpoint (BadZipFile' in log
    assert 'iter_2.pth' in log
    row = json.load(open(osp.join(run_dir, 'FINISHED.json')))
    assert row['iterations'] == 4
    starts = [a for a in read_attempts(run_dir) if a['event'] == 'start']
    assert starts[-1]['iter'] == 2
    assert any(n.startswith('iter_4.pth.damaged-')
               for n in os.listdir(run_dir))


def test_a_copied_work_dir_resumes_from_its_own_checkpoint(
        two_seeds, copy_of):
    _, src_work = two_seeds
    grid, work_dir = copy_of
    run_dir = _run_dirs(work_dir)[0]
    original = osp.join(src_work, osp.basename(run_dir), 'iter_4.pth')
    # As cp -r leaves it: last_checkpoint names the original's file, which
    # exists (mmengine writes absolute paths); the run is unfinished.
    with open(osp.join(run_dir, 'last_checkpoint'), 'w') as f:
        f.write(original)
    os.remove(osp.join(run_dir, 'FINISHED.json'))
    assert run_grid.main([grid]) == 0
    with open(osp.join(run_dir, 'last_checkpoint')) as f:
        assert f.read().strip() == osp.join(run_dir, 'iter_4.pth')
    starts = [a for a in read_attempts(run_dir) if a['event'] == 'start']
    assert starts[-1]['iter'] == 4
    assert json.load(open(osp.join(run_dir, 'FINISHED.json')))[
        'iterations'] == 4


def test_plain_restart_with_a_failed_run_exits_non_zero(copy_of, capsys):
    grid, work_dir = copy_of
    run_dir = _run_dirs(work_dir)[1]
    finished = json.load(open(osp.join(run_dir, 'FINISHED.json')))
    os.remove(osp.join(run_dir, 'FINISHED.json'))
    with open(osp.join(run_dir, 'FAILED.json'), 'w') as f:
        json.dump(dict(finished, status='failed', error='boom'), f)
    assert run_grid.main([grid]) == 1
    err = capsys.readouterr().err
    assert ('grid incomplete: 1 failed (mask_rcnn/default/tiny/seed1; '
            '--retry-failed runs them again); 1 of 2 finished') in err
    assert list(_results(work_dir).status) == ['finished', 'failed']


def test_work_dir_that_is_a_file_is_named(tiny_builtin, tmp_path, capsys):
    not_a_dir = tmp_path / 'work'
    not_a_dir.write_text('x')
    grid = write_grid(tmp_path / 'g.yaml', not_a_dir, tiny_builtin,
                      {'default': {}})
    assert run_grid.main([grid]) == 2
    assert f'work dir {not_a_dir} exists and is not a directory' in \
        capsys.readouterr().err


@pytest.fixture
def tmpfs(tmp_path):
    """Mount a small tmpfs (needs root); yields (path, remount)."""
    mount = tmp_path / 'mnt'
    mount.mkdir()

    def remount(options):
        subprocess.run(['mount', '-o', f'remount,{options}', str(mount)],
                       check=True, capture_output=True)

    try:
        subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=64k', 'tmpfs',
                        str(mount)], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as e:
        pytest.skip(f'cannot mount a tmpfs here (needs root): {e}')
    try:
        yield str(mount), remount
    finally:
        subprocess.run(['umount', '-l', str(mount)], capture_output=True)


def test_read_only_work_dir_is_named(tiny_builtin, tmp_path, tmpfs, capsys):
    mount, remount = tmpfs
    remount('ro')
    grid = write_grid(tmp_path / 'g.yaml', osp.join(mount, 'work'),
                      tiny_builtin, {'default': {}})
    assert run_grid.main([grid]) == 2
    err = capsys.readouterr().err
    assert f'work dir {mount}/work is not writable (Read-only file system' \
        in err
    assert 'Traceback' not in err


def test_full_disk_stops_with_one_line_and_resumes_once_freed(
        tiny_builtin, tmp_path, tmpfs, capsys):
    mount, remount = tmpfs
    # Room for the run dir's small files, not for a checkpoint.
    remount('size=2m')
    work_dir = osp.join(mount, 'work')
    grid = write_grid(tmp_path / 'g.yaml', work_dir, tiny_builtin,
                      {'default': {}})
    code = run_grid.main([grid])
    err = capsys.readouterr().err
    assert code != 0
    assert 'No space left on device' in err
    assert 'Traceback' not in err
    # Nothing was recorded as finished, and the run is not failed for good:
    # with space freed, the same command trains it.
    run_dir = _run_dirs(work_dir)[0]
    assert not osp.isfile(osp.join(run_dir, 'FINISHED.json'))
    remount('size=512m')
    assert run_grid.main([grid]) == 0
    assert list(_results(work_dir).status) == ['finished']


def test_a_failed_atomic_write_names_the_file_meant(tmpfs):
    from experiments.store import atomic_write_text
    mount, remount = tmpfs
    remount('ro')
    target = osp.join(mount, 'results.csv')
    with pytest.raises(OSError) as err:
        atomic_write_text(target, 'x')
    # Not the temporary .tmp-xxxx file the write went through.
    assert err.value.filename == target
    assert 'Read-only file system' in str(err.value)
