"""The ``onnx_inference.py`` an export ships, run as a user runs it.

The model is a small ONNX graph with the export's inputs and outputs that
returns fixed detections, so the script's command line (drawing, folders,
missing packages) runs through the real onnxruntime in seconds.
"""
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import numpy as np
import pytest

from mmdet_plugins.export import onnx_inference

H, W = 96, 128
# Two detections in image pixels (the test resize keeps the size): one
# above the score threshold, one below it.
BOXES = [[20., 30., 60., 80.], [80., 10., 120., 40.]]
SCORES = [0.9, 0.1]
CLASSES = ['circle', 'square']


def fixed_detections_model(path: str) -> None:
    """An ONNX graph with the export's inputs and outputs: :data:`BOXES`
    with their scores, label 1 and all-ones 28 x 28 mask probabilities."""
    import onnx
    from onnx import TensorProto, helper

    def const(name, values, dtype):
        array = np.asarray(values, dtype=dtype)
        return helper.make_node('Constant', [], [name], value=(
            onnx.numpy_helper.from_array(array, name + '_value')))

    n = len(BOXES)
    nodes = [const('boxes', BOXES, np.float32),
             const('scores', SCORES, np.float32),
             const('labels', [1] * n, np.int64),
             const('mask_probs', np.ones((n, 28, 28)), np.float32),
             const('mask_scores', SCORES, np.float32)]
    outputs = [('boxes', TensorProto.FLOAT, [n, 4]),
               ('scores', TensorProto.FLOAT, [n]),
               ('labels', TensorProto.INT64, [n]),
               ('mask_probs', TensorProto.FLOAT, [n, 28, 28]),
               ('mask_scores', TensorProto.FLOAT, [n])]
    graph = helper.make_graph(
        nodes, 'fixed', [
            helper.make_tensor_value_info('image', TensorProto.FLOAT,
                                          [1, 3, None, None]),
            helper.make_tensor_value_info('img_shape', TensorProto.INT64,
                                          [2])],
        [helper.make_tensor_value_info(*o) for o in outputs])
    model = helper.make_model(graph,
                              opset_imports=[helper.make_opsetid('', 18)])
    model.ir_version = 8
    onnx.save(model, path)
    meta = dict(resize=dict(scale=[W, H], keep_ratio=True),
                preprocess=dict(bgr_to_rgb=True, mean=[0., 0., 0.],
                                std=[1., 1., 1.], pad_size_divisor=32,
                                pad_value=0.),
                classes=CLASSES, mask_thr_binary=0.5)
    with open(osp.splitext(path)[0] + '.json', 'w') as f:
        json.dump(meta, f)


@pytest.fixture
def export(tmp_path):
    """An export folder as the tool writes it (``model.onnx``,
    ``model.json``, ``onnx_inference.py``) and a grey test image."""
    import cv2
    folder = tmp_path / 'export'
    folder.mkdir()
    fixed_detections_model(str(folder / 'model.onnx'))
    shutil.copy(onnx_inference.__file__, folder / 'onnx_inference.py')
    image = np.full((H, W, 3), 128, dtype=np.uint8)
    image[::7] = 90   # some texture
    cv2.imwrite(str(tmp_path / 'image.png'), image)
    return folder, tmp_path / 'image.png', image


def run_script(folder, *args, env=None):
    return subprocess.run(
        [sys.executable, str(folder / 'onnx_inference.py'),
         str(folder / 'model.onnx'), *map(str, args)],
        capture_output=True, text=True, timeout=120, env=env,
        cwd=str(folder))


def test_out_draws_the_detections_above_the_threshold(export, tmp_path):
    import cv2
    folder, image_path, image = export
    out = tmp_path / 'drawn' / 'result.png'
    done = run_script(folder, image_path, '--out', out)
    assert done.returncode == 0, done.stderr
    assert osp.isfile(out), done.stdout
    drawn = cv2.imread(str(out))
    assert drawn.shape == image.shape
    diff = np.abs(drawn.astype(int) - image).sum(axis=2)
    # The mask fills the kept box; its inside changed, in its class colour.
    x0, y0, x1, y1 = (int(v) for v in BOXES[0])
    assert (diff[y0 + 5:y1 - 5, x0 + 5:x1 - 5] > 20).mean() > 0.9
    # The detection under --score-thr (right, top) is not drawn, nor is
    # anything away from the kept one and its label.
    assert diff[12:38, 82:118].max() == 0 and diff[85:, 70:].max() == 0
    # Text: one line per image, one per kept detection, the file drawn.
    lines = done.stdout.splitlines()
    assert lines[0] == f'{image_path}: 1 detection(s) with score >= 0.3'
    assert lines[1].split()[:3] == ['square', 'score', '0.900']
    assert lines[2] == f'  drawn: {out}'
    assert done.stderr == ''


def test_a_folder_of_images_is_drawn_into_a_folder(export, tmp_path):
    import cv2
    folder, image_path, image = export
    source = tmp_path / 'images'
    source.mkdir()
    cv2.imwrite(str(source / 'a.png'), image)
    cv2.imwrite(str(source / 'b.jpg'), image[:80, :100])
    (source / 'notes.txt').write_text('not an image')
    out = tmp_path / 'drawn'
    done = run_script(folder, source, '--out', out)
    assert done.returncode == 0, done.stderr
    assert sorted(os.listdir(out)) == ['a.png', 'b.jpg']
    assert cv2.imread(str(out / 'b.jpg')).shape == (80, 100, 3)
    assert not (cv2.imread(str(out / 'a.png')) == image).all()
    assert [line for line in done.stdout.splitlines()
            if 'detection(s)' in line] == [
        f'{source / name}: 1 detection(s) with score >= 0.3'
        for name in ('a.png', 'b.jpg')]


def test_the_input_image_is_never_overwritten(export):
    folder, image_path, image = export
    before = image_path.read_bytes()
    done = run_script(folder, image_path, '--out', image_path.parent)
    assert done.returncode == 1
    assert done.stderr.strip() == (f'error: {image_path}: --out would '
                                   f'overwrite the input image')
    assert image_path.read_bytes() == before


@pytest.mark.parametrize('module', ['numpy', 'cv2', 'onnxruntime'])
def test_a_missing_package_is_named_in_one_line(export, tmp_path, module):
    folder, image_path, _ = export
    sabotage = tmp_path / 'sabotage'
    sabotage.mkdir()
    (sabotage / f'{module}.py').write_text(
        f'raise ImportError("No module named {module!r}")\n')
    env = dict(os.environ, PYTHONPATH=str(sabotage))
    done = run_script(folder, image_path, env=env)
    assert done.returncode == 1
    assert 'Traceback' not in done.stderr
    assert done.stderr == (
        'error: onnx_inference.py needs numpy, OpenCV and onnxruntime (pip '
        'install numpy opencv-python-headless onnxruntime); cannot import '
        f'{module} (No module named {module!r})\n')
    assert done.stdout == ''
    # --help says so too, whatever is missing.
    done = run_script(folder, '--help', env=env)
    assert done.returncode == 0
    assert 'Needs three packages: numpy, OpenCV' in ' '.join(
        done.stdout.split())
