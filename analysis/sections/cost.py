"""Report sections on what the models cost: SE vs eSE, speed vs accuracy.

FLOPs and latency come from ``<run>/cost.json``
(``experiments/measure_cost.py``); accuracy from the results table. A
latency is always shown with the device it was timed on, and figures draw
one panel per device: milliseconds from different machines are never put on
one axis. The paper's own milliseconds (``analysis/data/published.csv``)
get a panel of their own.
"""
import os.path as osp
from typing import List

import matplotlib.pyplot as plt
import pandas as pd

from analysis.latency import latency_estimate
from analysis.published import published_table
from analysis.report import Section, save_figure
from experiments.store import COST, ORT_COST, read_json

ATTENTION_ARMS = ['v1', 'residual', 'se', 'ese']
# (runtime, its cost file, its results-table column prefix)
RUNTIMES = [('pytorch', COST, ''), ('onnxruntime', ORT_COST, 'ort_')]
HOW_MEASURED = (
    'FLOPs: mmengine FlopAnalyzer on the tensor forward at the test input '
    'size, one fused multiply-add = one FLOP (the MMDetection model-zoo '
    'convention), mean over the first test images; the mask head on '
    'detections is not traced and the analyzer skips element-wise ops '
    '(e.g. the SE/eSE gate multiplication). Latency: median ms per image, '
    'batch 1, fp32, preprocessing to post-processed masks, after warm-up, '
    'with a 95% bootstrap interval; the device is named with it, and '
    'other_load is how many cores\' worth of CPU other processes used '
    'meanwhile (above ~0.25 the timing is inflated). The mask branch runs '
    'once per detection, so latency also follows dets_per_img, the '
    'detections the weights produce: short runs from scratch can produce '
    'many more than a converged model. Runs are timed in rounds, each '
    'visiting every run in turn; the interval resamples images and rounds, '
    'so drift between rounds (round_medians_ms) widens it. runtime '
    'onnxruntime: the ONNX export (tools/export_onnx.py) timed under '
    'onnxruntime in the same rounds, threads and images, over the same span '
    '(resized image to pasted masks); hollow markers in the figure.')


def _fmt_interval(e) -> str:
    return '–' if e is None else f'{e.value:.1f} [{e.lo:.1f}, {e.hi:.1f}]'


def _costs(runs: pd.DataFrame, key: str, cost_file: str = COST) -> list:
    return [c[key] for c in (read_json(osp.join(str(d), cost_file))
                             for d in runs.work_dir) if c and key in c]


def _mean_cost(runs: pd.DataFrame, key: str, cost_file: str = COST) -> float:
    values = _costs(runs, key, cost_file)
    return round(sum(values) / len(values), 1) if values else float('nan')


def _round_medians(runs: pd.DataFrame, cost_file: str = COST) -> str:
    """Each timing round's median (first timed seed): the drift."""
    rounds = _costs(runs, 'round_latency_ms', cost_file)
    return ' / '.join(f'{x:.1f}' for x in rounds[0]) if rounds else '–'


def arm_cost_rows(all_results: pd.DataFrame,
                  n_resamples: int = 1000) -> List[dict]:
    """Cost and accuracy of each finished grid/model/arm/dataset.

    One row per runtime an arm was timed under: ``pytorch`` always, and
    ``onnxruntime`` when ``measure_cost.py --onnxruntime`` timed its export
    (same AP: the export reproduces the model's detections, which
    ``tools/export_onnx.py`` checks). The latency interval (``_lat``, an
    Estimate or None) is computed here once, for both sections.
    """
    done = all_results[all_results.status == 'finished']
    if 'ort_latency_device' not in done:
        done = done.assign(ort_latency_device=None,
                           ort_latency_other_load=float('nan'))
    rows = []
    for (grid, model, arm, dataset), g in done.groupby(
            ['grid', 'model', 'arm', 'dataset'], sort=False):
        for runtime, cost_file, prefix in RUNTIMES:
            lat = latency_estimate(g, n_resamples, cost_file=cost_file)
            if runtime != 'pytorch' and lat is None:
                continue
            devices = sorted(set(g[f'{prefix}latency_device'].dropna()))
            rows.append(dict(
                grid=grid, model=model, arm=arm, dataset=dataset,
                runtime=runtime, seeds=len(g),
                params_M=round(g.params.mean() / 1e6, 3),
                GFLOPs=round(g.gflops.mean(), 3),
                backbone_GFLOPs=round(g.backbone_gflops.mean(), 3),
                latency_ms=_fmt_interval(lat),
                round_medians_ms=_round_medians(g, cost_file),
                device=', '.join(devices) or '–',
                # Cores' worth of CPU other processes used while timing.
                other_load=round(g[f'{prefix}latency_other_load'].max(), 2),
                dets_per_img=_mean_cost(g, 'detections_per_image',
                                        cost_file),
                box_AP=round(100 * g.box_AP.mean(), 1),
                mask_AP=round(100 * g.mask_AP.mean(), 1),
                _lat=lat))
    return rows


def attention_section(cost_rows: List[dict]) -> Section:
    """SE vs eSE per VoVNet model: parameters, FLOPs, latency and AP."""
    rows = sorted((r for r in cost_rows if r['arm'] in ATTENTION_ARMS
                   and r['runtime'] == 'pytorch'),
                  key=lambda r: (r['grid'], r['model'], r['dataset'],
                                 ATTENTION_ARMS.index(r['arm'])))
    if not rows:
        return Section('SE vs eSE (VoVNet arms)', [
            'No VoVNet SE/eSE arms in these results: python experiments/'
            'run_grid.py experiments/grids/centermask_table4.yaml, then '
            'experiments/measure_cost.py on it.'])
    table = pd.DataFrame(rows).drop(columns='_lat', errors='ignore')
    text = ['Whole-model parameters, FLOPs, latency and AP x100 per VoVNet '
            'arm (AP: mean over seeds). ' + HOW_MEASURED]
    if rows and table.GFLOPs.isna().all():
        text.append('No arm has FLOPs or latency yet: run experiments/'
                    'measure_cost.py on its grid after training.')
    return Section('SE vs eSE (VoVNet arms)', text, [table])


def _published_points() -> pd.DataFrame:
    pub = published_table()
    wide = pub.pivot_table(index=['table', 'row'], columns='metric',
                           values='value', aggfunc='first').reset_index()
    return wide.dropna(subset=['latency_ms'])


def speed_accuracy_section(cost_rows: List[dict], out_dir: str) -> Section:
    """Mask AP (box AP without masks) against latency, one panel per device."""
    rows = [r for r in cost_rows if r['_lat'] is not None]
    section = Section('Speed vs accuracy', [HOW_MEASURED])
    published = _published_points()
    devices = sorted({r['device'] for r in rows})
    panels = len(devices) + (not published.empty)
    if not panels:
        section.text.append('Nothing to draw: no run has a latency.')
        return section
    fig, axes = plt.subplots(1, panels, figsize=(6.5 * panels, 4.8),
                             squeeze=False)
    axes = list(axes[0])
    if not published.empty:
        ax = axes.pop(0)
        for table, g in published.groupby('table', sort=False):
            y = g.mask_AP.where(g.mask_AP.notna(), g.box_AP)
            ax.plot(g.latency_ms, y, 'o', label=table)
            for x, yy, name in zip(g.latency_ms, y, g.row):
                ax.annotate(name, (x, yy), fontsize=6,
                            xytext=(3, 2), textcoords='offset points')
        ax.set_title('published (COCO val, the paper\'s GPU)', fontsize=9)
        ax.set_xlabel('ms per image')
        ax.set_ylabel('mask AP (box AP without a mask branch)')
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    colours = plt.rcParams['axes.prop_cycle'].by_key()['color']
    grids = sorted({r['grid'] for r in rows})
    keys = []  # the numbered points, listed under the figure
    for ax, device in zip(axes, devices):
        drawn, tasks = set(), set()
        on_device = [r for r in rows if r['device'] == device]
        # The axis is set by the medians: one noisy interval (a loaded
        # machine) must not squeeze every point into a corner; an interval
        # past the edge is cut there and its end is listed.
        x_max = 1.5 * max(r['_lat'].value for r in on_device)
        load = max((r['other_load'] for r in on_device
                    if r['other_load'] == r['other_load']), default=None)
        for r in on_device:
            lat = r['_lat']
            task = 'mask' if r['mask_AP'] == r['mask_AP'] else 'box'
            tasks.add(task)
            y = r[f'{task}_AP']
            colour = colours[grids.index(r['grid']) % len(colours)]
            ort = r['runtime'] == 'onnxruntime'
            key = (r['grid'], r['runtime'])
            ax.errorbar(lat.value, y, xerr=[[lat.value - lat.lo],
                                            [min(lat.hi, x_max) - lat.value]],
                        fmt='o' if task == 'mask' else 's', capsize=3,
                        color=colour, mfc='none' if ort else colour,
                        label=None if key in drawn
                        else f'grid {r["grid"]} ({r["runtime"]})')
            drawn.add(key)
            # A number, not a name, beside each point: names collide.
            cut = ' (interval cut at the edge)' if lat.hi > x_max else ''
            keys.append(f'[{len(keys) + 1}] {r["model"]}/{r["arm"]}'
                        f'{" (onnxruntime)" if ort else ""} on {device}: '
                        f'{lat.value:.1f} ms [{lat.lo:.1f}, {lat.hi:.1f}]'
                        f'{cut}, {task} AP {y:.1f}, {r["seeds"]} seed(s)')
            ax.annotate(str(len(keys)), (lat.value, y), fontsize=7,
                        xytext=(4, 4), textcoords='offset points')
        ax.set_xlim(0, x_max)
        ax.set_title(f'ours, timed on {device}' + (
            f' (other load up to {load:.1f} cores)' if load else ''),
            fontsize=9)
        ax.set_xlabel('median ms per image (bars: 95% interval)')
        # Say only what is drawn: squares are box-only models.
        ax.set_ylabel('AP x100 (circle: mask, square: box)'
                      if tasks == {'mask', 'box'}
                      else f'{tasks.pop()} AP x100')
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    section.figures.append(save_figure(
        fig, osp.join(out_dir, 'speed_vs_accuracy.png')))
    if keys:
        section.text.append('Numbered points: ' + '; '.join(keys) + '.')
    if rows:
        section.tables.append(pd.DataFrame(
            [{k: v for k, v in r.items() if k != '_lat'} for r in rows]))
    else:
        section.text.append('No run of ours has a latency yet '
                            '(experiments/measure_cost.py).')
    return section
