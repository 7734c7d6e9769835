"""``tools/fetch_weights.py GRID``: every initial weight of the grid into
the cache its runs read, checked against its published sha256 prefix, once
(issue 37, item 2). A local HTTP server stands in for the internet."""
import functools
import hashlib
import http.server
import importlib.util
import threading

import pytest
from helpers import write_grid

from experiments import run_grid
from experiments.store import project_path

# The tool in this process (its main), without putting tools/ on sys.path.
_spec = importlib.util.spec_from_file_location(
    'fetch_weights', project_path('tools/fetch_weights.py'))
fetch_weights = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fetch_weights)

PAYLOAD = b'not really a checkpoint, but bytes with a known sha256'
SHA = hashlib.sha256(PAYLOAD).hexdigest()[:8]


@pytest.fixture
def server(tmp_path):
    """An HTTP server on localhost serving ``tmp_path/site``; yields its
    base URL and the list of paths it was asked for."""
    site = tmp_path / 'site'
    site.mkdir()
    (site / f'r18-{SHA}.pth').write_bytes(PAYLOAD)
    (site / 'r18-deadbeef.pth').write_bytes(PAYLOAD)
    asked = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            asked.append(self.path)

    httpd = http.server.ThreadingHTTPServer(
        ('127.0.0.1', 0), functools.partial(Handler, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{httpd.server_address[1]}', asked
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def grid(tiny_builtin, tmp_path, monkeypatch):
    """A tiny grid whose arm ``name`` reads ``checkpoint``, caches empty."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    monkeypatch.setenv('HF_HUB_CACHE', str(tmp_path / 'hf'))

    def make(*checkpoints: str, **extra) -> str:
        arms = {f'arm{i}': {'overrides': {'model.backbone.init_cfg': dict(
            _delete_=True, type='Pretrained', checkpoint=c)}}
            for i, c in enumerate(checkpoints)}
        return write_grid(tmp_path / 'g.yaml', tmp_path / 'work',
                          tiny_builtin, arms, **extra)
    return make


def test_downloads_checks_and_skips_what_is_there(server, grid, tmp_path,
                                                  capsys):
    url, asked = server
    path = grid(f'{url}/r18-{SHA}.pth', weights_cache=str(tmp_path / 'w'))
    assert run_grid.main([path, '--dry-run']) == 2
    assert fetch_weights.main([path]) == 0
    cached = tmp_path / 'w' / 'hub' / 'checkpoints' / f'r18-{SHA}.pth'
    assert cached.read_bytes() == PAYLOAD
    assert capsys.readouterr().out.startswith(f'downloaded {cached}')
    # Idempotent: the second call asks the server nothing.
    assert fetch_weights.main([path]) == 0
    assert capsys.readouterr().out.startswith(f'present    {cached}')
    assert asked == [f'/r18-{SHA}.pth']
    # The planner now finds it where the runs will read it.
    assert run_grid.main([path, '--dry-run']) == 0


def test_a_wrong_checksum_fails_in_one_line_and_leaves_nothing(
        server, grid, tmp_path, capsys):
    url, _ = server
    path = grid(f'{url}/r18-deadbeef.pth')
    assert fetch_weights.main([path, '--cache', str(tmp_path / 'c')]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith('error: configs/mask_rcnn/') and \
        'does not match its published sha256 prefix deadbeef' in line
    assert not (tmp_path / 'c' / 'hub' / 'checkpoints' /
                'r18-deadbeef.pth').exists()


def test_list_and_what_cannot_be_downloaded(grid, tmp_path, capsys):
    path = grid('checkpoints/no_such_weights.pth')
    assert fetch_weights.main([path, '--list']) == 1
    assert capsys.readouterr().out.startswith('missing    ')
    assert fetch_weights.main([path]) == 1
    assert 'no download is known for it; see docs/weights.md' in \
        capsys.readouterr().err
