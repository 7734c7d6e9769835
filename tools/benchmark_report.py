"""Time a COCO-size report: matching engines, resamples, every section
cold and cached, and peak memory.

    nice -n 10 python tools/benchmark_report.py                # 5000 images
    python tools/benchmark_report.py --images 500 --engines ours

Writes (or reuses) a synthetic grid of 12 finished runs under ``--out``
(``tools/synthetic_grid.py``: coco128-seg tiled to ``--images`` images,
real masks and crowd regions, up to 100 box and mask detections per image),
then measures, printing a Markdown table:

- one run's box and mask matching + accumulate with each of ``--engines``
  (this project's compiled engine, pycocotools' ``COCOeval``,
  faster-coco-eval's ``COCOeval_faster`` when installed) on the same files,
  ground truth loaded beforehand, results file read inside the timing; AP,
  APs, APm and APl of every engine side by side;
- ``--resamples`` image-bootstrap resamples of that run's box + mask AP;
- the report of the whole grid (``reports/generate_report.py --results``)
  twice, each in a fresh process: cold (every evaluation cache removed)
  and cached (the second build), step by step
  (:func:`analysis.sections.report_order.report_sections`' timings), with
  the process's peak RSS and that of its worker processes.

The machine's load average is printed with each measurement: other
processes on a 2-core machine slow every number here.
"""
import argparse
import contextlib
import io
import json
import os
import os.path as osp
import resource
import shutil
import subprocess
import sys
import time

ENGINES = ('ours', 'pycocotools', 'faster-coco-eval')
AREAS = ('all', 'small', 'medium', 'large')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--images', type=int, default=5000)
    parser.add_argument('--out', default='work_dirs/benchmark_report',
                        help='where the grid is written (reused when it '
                        'has the same size)')
    parser.add_argument('--engines', default=','.join(ENGINES),
                        help='matching engines to time, comma-separated')
    parser.add_argument('--resamples', type=int, default=1000)
    parser.add_argument('--skip-report', action='store_true')
    parser.add_argument('--json', default=None,
                        help='also write every number to this file')
    # Internal: one report build in this process.
    parser.add_argument('--build-report', default=None,
                        help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def load_average() -> str:
    return ' '.join(f'{x:.1f}' for x in os.getloadavg())


def _peak_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def build_report(results: str, out_dir: str, n_resamples: int) -> dict:
    """One report build: seconds per step and peak RSS (MB)."""
    t0 = time.perf_counter()
    from analysis.report import write_report
    from analysis.results import load_results
    from analysis.sections.report_order import report_sections
    timings = {'imports': time.perf_counter() - t0}
    df = load_results(results)
    os.makedirs(out_dir, exist_ok=True)
    sections = report_sections(df, df, out_dir, n_resamples, [results],
                               timings=timings)
    start = time.perf_counter()
    write_report(df, out_dir, results, sections=sections)
    timings['write (comparison, markdown, html)'] = \
        time.perf_counter() - start
    timings['total'] = time.perf_counter() - t0
    return dict(seconds=timings,
                peak_rss_mb=_peak_mb(resource.RUSAGE_SELF),
                peak_rss_children_mb=_peak_mb(resource.RUSAGE_CHILDREN))


def _report_in_child(results: str, out_dir: str, n_resamples: int) -> dict:
    out = subprocess.run(
        [sys.executable, osp.abspath(__file__), '--build-report', results,
         '--out', out_dir, '--resamples', str(n_resamples)],
        capture_output=True, text=True, check=False)
    if out.returncode:
        raise RuntimeError(f'report build failed:\n{out.stderr[-3000:]}')
    return json.loads(out.stdout.strip().splitlines()[-1])


def clear_caches(work_dir: str, report_dir: str) -> None:
    """Remove every run's evaluation cache and the last report."""
    for name in os.listdir(work_dir):
        cache = osp.join(work_dir, name, 'detections', 'eval-cache')
        if osp.isdir(cache):
            shutil.rmtree(cache)
    if osp.isdir(report_dir):
        shutil.rmtree(report_dir)


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _ours(coco_gt, det_file: str, iou_type: str) -> dict:
    from analysis.coco_eval.detections import load_detections
    from analysis.coco_eval.image_eval import evaluate_images
    ev = evaluate_images(coco_gt, load_detections(det_file), iou_type)
    return {a: ev.ap(area=a) for a in AREAS}


def _cocoeval(cls, coco_gt, det_file: str, iou_type: str) -> dict:
    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt = coco_gt.loadRes(det_file)
        ev = cls(coco_gt, coco_dt, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    # stats: AP, AP50, AP75, APs, APm, APl.
    return dict(zip(AREAS, (ev.stats[0], ev.stats[3], ev.stats[4],
                            ev.stats[5])))


def _engine(engine: str, ann_file: str, det_dir: str):
    """(label, run(iou_type) -> APs) of one engine, or None when it is not
    installed; the ground truth is loaded here, outside the timings."""
    def files(t):
        return f'{det_dir}/val.{t}.json'

    if engine == 'faster-coco-eval':
        try:
            import faster_coco_eval
            from faster_coco_eval import COCO as FCOCO
            from faster_coco_eval import COCOeval_faster
        except ImportError:
            print('faster-coco-eval is not installed: not timed')
            return None
        with contextlib.redirect_stdout(io.StringIO()):
            gt = FCOCO(ann_file)
        return (f'faster-coco-eval {faster_coco_eval.__version__}',
                lambda t: _cocoeval(COCOeval_faster, gt, files(t), t))
    if engine == 'pycocotools':
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
        with contextlib.redirect_stdout(io.StringIO()):
            gt = COCO(ann_file)
        return 'pycocotools', lambda t: _cocoeval(COCOeval, gt, files(t), t)
    if engine == 'ours':
        from analysis.coco_eval.run_eval import load_ground_truth
        gt = load_ground_truth(ann_file)
        # Compiled once (numba caches it on disk), outside the timings.
        _ours(gt, files('bbox'), 'bbox')
        return 'this project', lambda t: _ours(gt, files(t), t)
    raise SystemExit(f'unknown engine {engine!r}')


def time_matching(engines, ann_file: str, det_dir: str) -> dict:
    """Seconds and APs of each engine on one run's box and mask files."""
    out = {}
    for engine in engines:
        found = _engine(engine, ann_file, det_dir)
        if found is None:
            continue
        label, run = found
        for iou_type in ('bbox', 'segm'):
            aps, seconds = _timed(lambda: run(iou_type))
            out[(label, iou_type)] = dict(seconds=seconds, aps=aps,
                                          load=load_average())
            print(f'  {label} {iou_type}: {seconds:.1f} s, AP '
                  + ', '.join(f'{a} {100 * v:.4f}' for a, v in aps.items())
                  + f' (load {load_average()})', flush=True)
    return out


def time_resamples(ann_file: str, det_dir: str, n: int) -> float:
    from analysis.coco_eval.bootstrap import bootstrap_ap
    from analysis.coco_eval.run_eval import image_eval_for_run
    evals = {t: [image_eval_for_run(det_dir, ann_file, t)]
             for t in ('bbox', 'segm')}
    for (ev,) in evals.values():
        ev.cache_path = None  # computed, not read back from the disk
    _, seconds = _timed(lambda: bootstrap_ap(evals, n_resamples=n))
    return seconds


def markdown(matching: dict, resamples: float, n_resamples: int,
             reports: dict) -> str:
    lines = ['| step (one run) | engine | seconds | AP / APs / APm / APl '
             '(x100) |', '|---|---|---|---|']
    for (label, iou_type), m in matching.items():
        aps = ' / '.join(f'{100 * m["aps"][a]:.4f}' for a in AREAS)
        lines.append(f'| {iou_type} matching + accumulate | {label} | '
                     f'{m["seconds"]:.1f} | {aps} |')
    if resamples is not None:
        lines.append(f'| {n_resamples} resamples, box + mask AP | this '
                     f'project | {resamples:.1f} | |')
    if reports:
        lines += ['', '| report step (12 runs) | cold s | cached s |',
                  '|---|---|---|']
        cold, cached = reports['cold'], reports['cached']
        for step, s in cold['seconds'].items():
            lines.append(f'| {step} | {s:.1f} | '
                         f'{cached["seconds"].get(step, float("nan")):.1f} |')
        for key, what in (('peak_rss_mb', 'peak RSS, report process (MB)'),
                          ('peak_rss_children_mb',
                           'peak RSS, largest worker process (MB)')):
            lines.append(f'| {what} | {cold[key]:.0f} | {cached[key]:.0f} |')
        lines.append(f'| load average (1, 5, 15 min) after | {cold["load"]}'
                     f' | {cached["load"]} |')
    return '\n'.join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.build_report:
        print(json.dumps(build_report(args.build_report, args.out,
                                      args.resamples)))
        return 0
    sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
    from synthetic_grid import write_grid
    print(f'load average before: {load_average()}; {os.cpu_count()} CPU '
          f'cores', flush=True)
    (results, gen_s) = _timed(lambda: write_grid(args.out, args.images))
    print(f'grid: {results} ({gen_s:.0f} s)', flush=True)
    work_dir = osp.dirname(results)
    ann_file = osp.join(args.out, 'instances_val.json')
    first = sorted(d for d in os.listdir(work_dir)
                   if osp.isdir(osp.join(work_dir, d)))[0]
    det_dir = osp.join(work_dir, first, 'detections')
    engines = [e for e in args.engines.split(',') if e]
    matching = time_matching(engines, ann_file, det_dir)
    resamples = time_resamples(ann_file, det_dir, args.resamples)
    print(f'  {args.resamples} resamples of box + mask AP: {resamples:.1f} '
          f's (load {load_average()})', flush=True)
    reports = {}
    if not args.skip_report:
        report_dir = osp.join(args.out, 'report')
        clear_caches(work_dir, report_dir)
        for kind in ('cold', 'cached'):
            reports[kind] = _report_in_child(results, report_dir,
                                             args.resamples)
            reports[kind]['load'] = load_average()
            print(f'  {kind} report: {reports[kind]["seconds"]["total"]:.1f}'
                  f' s (load {load_average()})', flush=True)
    table = markdown(matching, resamples, args.resamples, reports)
    print(table)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(images=args.images, matching={
                f'{k[0]} {k[1]}': v for k, v in matching.items()},
                resamples_s=resamples, reports=reports), f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
