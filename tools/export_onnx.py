"""Export CenterMask, CenterMask-Lite, RetinaMask or Mask R-CNN to ONNX.

    python tools/export_onnx.py CONFIG CHECKPOINT --out exports/centermask.onnx
    python tools/export_onnx.py work_dirs/smoke/<run>/config.py \
        work_dirs/smoke/<run>/iter_200.pth --out exports/run.onnx \
        --check-images 16

Writes ``model.onnx`` (network, decoding, NMS, RoIAlign, mask head, MaskIoU;
dynamic image size), ``model.json`` (resize, normalisation, classes) and
``onnx_inference.py`` (numpy pre/post-processing and an onnxruntime runner;
needs only numpy, OpenCV and onnxruntime) -- see
``mmdet_plugins/export/onnx_inference.py``.

Then, unless ``--no-check``, runs PyTorch and onnxruntime on the config's
test images and compares them detection by detection (boxes, scores, mask
scores, binary masks) and by COCO box and mask AP through the project's
evaluator (``analysis/coco_eval/image_eval.py``), against the tolerances in
``mmdet_plugins/export/parity.py``; the figures go to
``<model>.parity.json``. Exit status: 0 within tolerance, 1 outside it, 2
for a model or config with no export path, or a checkpoint that does not
fit the config.

The checkpoint loads strictly: every weight of the config's model must be
in it with its shape, and it may hold nothing else; otherwise the tool
stops with one line naming how many keys are missing, unexpected or of
another shape, and a few of each (a Mask R-CNN config given a RetinaMask
checkpoint would otherwise export a half-random model and compare it with
itself). ``--allow-partial-checkpoint`` loads only the keys that fit and
leaves the rest as initialised, with a warning that counts them -- for a
deliberate partial model (e.g. a backbone-only checkpoint to test the
export path), never for reported numbers.
"""
import argparse
import contextlib
import io
import json
import os.path as osp
import sys

PROJECT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if PROJECT not in sys.path:
    sys.path.insert(0, PROJECT)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Export a detector to ONNX and check it against PyTorch.')
    parser.add_argument('config', help='mmdet config (a run\'s config.py)')
    parser.add_argument('checkpoint', help='trained weights (.pth)')
    parser.add_argument('--out', required=True, help='the .onnx to write')
    parser.add_argument('--check-images', type=int, default=None,
                        help='test images compared (default: all)')
    parser.add_argument('--no-check', action='store_true',
                        help='export only')
    parser.add_argument('--threads', type=int, default=None,
                        help='CPU threads for torch and onnxruntime')
    parser.add_argument('--allow-partial-checkpoint', action='store_true',
                        help='load only the checkpoint keys that fit the '
                        'config, leave the rest as initialised (default: a '
                        'checkpoint that does not fit is an error, exit 2)')
    args = parser.parse_args(argv)
    # Written and printed without ``..`` or ``./`` (``main/../exports/x``
    # reads as ``exports/x``).
    args.out = osp.normpath(args.out)
    return args


def coco_ap(ann_file: str, results: list, iou_type: str) -> float:
    """AP@[.5:.95] of COCO results through
    ``analysis.coco_eval.image_eval``."""
    from pycocotools.coco import COCO

    from analysis.coco_eval.image_eval import evaluate_images
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(ann_file)
    return float(evaluate_images(gt, results, iou_type).ap())


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    from mmdet_plugins.export.checkpoint import (CheckpointMismatchError,
                                                 load_weights)
    from mmdet_plugins.export.exporter import (build_test_loader,
                                               export_onnx, load_detector)
    from mmdet_plugins.export.graphs import UnsupportedModelError
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        model, cfg = load_detector(args.config, None)
        not_loaded = load_weights(model, args.checkpoint,
                                  f'config {args.config}',
                                  allow_partial=args.allow_partial_checkpoint)
    except CheckpointMismatchError as e:
        print(f'error: {e}; nothing exported (--allow-partial-checkpoint '
              f'loads only the keys that fit)', file=sys.stderr)
        return 2
    except FileNotFoundError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    try:
        meta = export_onnx(model, cfg, args.out)
    except (UnsupportedModelError, FileNotFoundError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    print(f'{args.out}: {meta["model"]} exported in '
          f'{meta["export_seconds"]:.1f} s (opset {meta["opset"]}); '
          f'{osp.splitext(args.out)[0]}.json and onnx_inference.py beside '
          f'it')
    if args.no_check:
        return 0

    from mmdet_plugins.export.onnx_inference import OnnxDetector
    from mmdet_plugins.export.parity import (TOLERANCES, compare_on_split,
                                             within_tolerance)
    detector = OnnxDetector(args.out, threads=torch.get_num_threads())
    loader = build_test_loader(cfg)
    found = compare_on_split(model, loader, detector, args.check_images)
    summary = found['summary']
    ann_file = loader.dataset.ann_file
    for iou_type in ('bbox', 'segm'):
        for who in ('torch', 'onnx'):
            summary[f'{who}_{iou_type}_AP'] = coco_ap(
                ann_file, found['coco'][f'{who}_{iou_type}'], iou_type)
    problems = within_tolerance(summary)
    report = dict(config=osp.abspath(args.config),
                  checkpoint=osp.abspath(args.checkpoint),
                  # Non-empty only with --allow-partial-checkpoint.
                  checkpoint_keys_not_loaded={
                      k: len(v) for k, v in not_loaded.items()},
                  onnx=osp.abspath(args.out), ann_file=ann_file,
                  tolerances=TOLERANCES, summary=summary,
                  within_tolerance=not problems, problems=problems,
                  images=found['images'])
    out = osp.splitext(args.out)[0] + '.parity.json'
    with open(out, 'w') as f:
        json.dump(report, f, indent=1)
    print(f'checked on {summary["images"]} test images '
          f'({summary["detections"]} PyTorch detections): '
          f'{summary["images_same_detections"]} images with the same '
          f'detections; {summary["cut_ties"]} detection(s) tied at the '
          f'max_per_img cut, {summary["reordered"]} in another order')
    for key in ('max_box_abs', 'max_score_abs', 'max_mask_score_abs',
                'max_mask_pixel_diff'):
        print(f'  {key}: {summary[key]:.3g} (tolerance {TOLERANCES[key]})')
    for iou_type in ('bbox', 'segm'):
        print(f'  {iou_type} AP: PyTorch {summary[f"torch_{iou_type}_AP"]:.4f}'
              f', onnxruntime {summary[f"onnx_{iou_type}_AP"]:.4f}')
    print(f'figures: {out}')
    if problems:
        for p in problems:
            print(f'error: {p}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
