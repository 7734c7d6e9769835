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
from matplotlib.lines import Line2D

from analysis.figure_labels import place_labels
from analysis.latency import latency_estimate
from analysis.published import published_table
from analysis.report import Section, save_figure
from analysis.sections.comparison import LOADED_CORES
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
    f'meanwhile (above ~{LOADED_CORES} the timing is inflated). The mask '
    'branch runs once per detection, so latency also follows '
    'dets_per_img, the detections the weights produce: short runs from '
    'scratch can produce many more than a converged model. Runs are timed '
    'in rounds, each visiting every run in turn; the interval resamples '
    'images and rounds, so drift between rounds (round_medians_ms) widens '
    'it. runtime onnxruntime: the ONNX export (tools/export_onnx.py) timed '
    'under onnxruntime in the same rounds, threads and images, over the '
    'same span (resized image to pasted masks); hollow markers in the '
    'figure.')

COST_CAPTION = (
    'One row per arm and runtime: params_M (millions), GFLOPs (whole model '
    'and backbone), latency_ms: median ms per image [95% interval], '
    'round_medians_ms: each timing round\'s median, device: where it was '
    'timed, other_load: cores\' worth of CPU other processes used meanwhile '
    f'(above {LOADED_CORES} the timing is inflated), dets_per_img: '
    'detections per image, box_AP and mask_AP x100 (mean over seeds).')


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
            'No VoVNet SE/eSE arms in these results: .venv/bin/python '
            'experiments/run_grid.py experiments/grids/centermask_table4.yaml'
            ', then experiments/measure_cost.py on it.'])
    table = pd.DataFrame(rows).drop(columns='_lat', errors='ignore')
    text = ['Whole-model parameters, FLOPs, latency and AP x100 per VoVNet '
            'arm (AP: mean over seeds). ' + HOW_MEASURED]
    if rows and table.GFLOPs.isna().all():
        text.append('No arm has FLOPs or latency yet: run experiments/'
                    'measure_cost.py on its grid after training.')
    section = Section('SE vs eSE (VoVNet arms)', text)
    section.add_table(table, COST_CAPTION)
    return section


KEY_COLUMNS = 3  # of the published points' key


def _published_points() -> pd.DataFrame:
    """One row per distinct published point (table, row, latency and APs):
    a row printed in two tables (same numbers) is one point naming both."""
    pub = published_table()
    wide = pub.pivot_table(index=['table', 'row'], columns='metric',
                           values='value', aggfunc='first').reset_index()
    wide = wide.dropna(subset=['latency_ms'])
    keys = ['row', 'latency_ms', 'box_AP', 'mask_AP']
    tables = wide.groupby(keys, sort=False, dropna=False).table.agg(
        lambda t: ' = '.join(t))
    return wide.drop_duplicates(keys).drop(columns='table').merge(
        tables.reset_index(), on=keys, how='left')


def _published_panels(ax_box, ax_mask, ax_key, published: pd.DataFrame,
                      labelled: list) -> None:
    """Box AP and mask AP of the published points, each on its own axes,
    numbered the same in both; the numbers' key fills ``ax_key``."""
    colours = plt.rcParams['axes.prop_cycle'].by_key()['color']
    first = [t.split(' = ')[0] for t in published.table]
    tables = list(dict.fromkeys(first))
    # "CenterMask Table 4" -> "Table 4" when every table is CenterMask's.
    paper = {t.split(' ')[0] for t in published.table}
    paper = paper.pop() if len(paper) == 1 else ''
    handles = []
    for ax, task in ((ax_box, 'box'), (ax_mask, 'mask')):
        xs, ys, labels = [], [], []
        for n, (r, table) in enumerate(zip(published.itertuples(), first)):
            y = getattr(r, f'{task}_AP')
            colour = colours[tables.index(table) % len(colours)]
            if task == 'box':
                names = r.table.replace(f'{paper} ', '').split(' = ')
                more = f' and {len(names) - 1} more' if names[1:] else ''
                handles.append(Line2D([], [], marker='o', ls='', color=colour,
                                      label=f'{n + 1}  {r.row} ({names[0]}'
                                      f'{more})'))
            if y != y:
                continue
            ax.plot(r.latency_ms, y, 'o', color=colour)
            xs.append(r.latency_ms)
            ys.append(y)
            labels.append(str(n + 1))
        ax.margins(0.12)
        ax.set_title(f'published {task} AP (COCO val, the paper\'s GPU)',
                     fontsize=9)
        ax.set_xlabel('ms per image')
        ax.set_ylabel(f'{task} AP x100')
        ax.grid(alpha=0.3)
        labelled.append((ax, xs, ys, labels))
    ax_mask.set_xlim(ax_box.get_xlim())  # the same ms scale in both
    without = [h.get_label().split('  ')[0] for h, r in
               zip(handles, published.itertuples()) if r.mask_AP != r.mask_AP]
    if without:
        ax_mask.text(0.01, 0.01, f'no mask branch: {", ".join(without)} '
                     '(box panel only)', transform=ax_mask.transAxes,
                     fontsize=7, color='0.4')
    ax_key.axis('off')
    key = ax_key.legend(handles=handles, fontsize=7, loc='upper left',
                        ncol=KEY_COLUMNS, borderaxespad=0, frameon=False,
                        title=f'published points ({paper} table)'.replace(
                            '( ', '('), title_fontsize=7,
                        alignment='left')
    key.set_in_layout(False)  # its row is sized for it


def _device_panel(ax, device: str, on_device: List[dict], grids: List[str],
                  keys: List[str], labelled: list) -> None:
    """Our runs timed on one device; each point numbered, the numbers
    listed in ``keys``."""
    colours = plt.rcParams['axes.prop_cycle'].by_key()['color']
    drawn, tasks = set(), set()
    # The axis is set by the medians: one noisy interval (a loaded machine)
    # must not squeeze every point into a corner; an interval past the edge
    # is cut there and its end is listed.
    x_max = 1.5 * max(r['_lat'].value for r in on_device)
    load = max((r['other_load'] for r in on_device
                if r['other_load'] == r['other_load']), default=None)
    xs, ys, labels = [], [], []
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
        xs.append(lat.value)
        ys.append(y)
        labels.append(str(len(keys)))
    ax.set_xlim(0, x_max)
    ax.margins(y=0.12)
    ax.set_title(f'ours, timed on {device}' + (
        f' (other load up to {load:.1f} cores)' if load else ''),
        fontsize=9)
    ax.set_xlabel('median ms per image (bars: 95% interval)')
    # Say only what is drawn: squares are box-only models.
    ax.set_ylabel('AP x100 (circle: mask, square: box)'
                  if tasks == {'mask', 'box'} else f'{tasks.pop()} AP x100')
    ax.legend(fontsize=7, loc='best')
    ax.grid(alpha=0.3)
    labelled.append((ax, xs, ys, labels))


def speed_accuracy_section(cost_rows: List[dict], out_dir: str) -> Section:
    """AP against latency: the paper's points in a box AP and a mask AP
    panel, ours in one panel per device (mask AP, box AP for box-only
    models, marked by a square)."""
    rows = [r for r in cost_rows if r['_lat'] is not None]
    section = Section('Speed vs accuracy', [HOW_MEASURED])
    published = _published_points()
    devices = sorted({r['device'] for r in rows})
    panels = len(devices) + 2 * (not published.empty)
    if not panels:
        section.text.append('Nothing to draw: no run has a latency.')
        return section
    # The published points' key gets a row of its own, under the panels.
    key_rows = -(-len(published) // KEY_COLUMNS)
    key_inches = 0.17 * key_rows + 0.35 if key_rows else 0.0
    fig = plt.figure(figsize=(max(5.5 * panels, 11), 4.6 + key_inches))
    grid = fig.add_gridspec(1 + bool(key_rows), panels,
                            height_ratios=[4.6] + ([key_inches] if key_rows
                                                  else []))
    axes = [fig.add_subplot(grid[0, i]) for i in range(panels)]
    labelled: list = []
    if not published.empty:
        _published_panels(axes.pop(0), axes.pop(0),
                          fig.add_subplot(grid[1, :]), published, labelled)
    grids = sorted({r['grid'] for r in rows})
    keys: List[str] = []  # the numbered points, listed under the figure
    for ax, device in zip(axes, devices):
        _device_panel(ax, device, [r for r in rows if r['device'] == device],
                      grids, keys, labelled)
    # Numbers are placed once the axes are laid out, so that none covers
    # another or a point (analysis/figure_labels.py).
    fig.tight_layout()
    for ax, xs, ys, labels in labelled:
        place_labels(ax, xs, ys, labels)
    section.figures.append(save_figure(
        fig, osp.join(out_dir, 'speed_vs_accuracy.png')))
    if keys:
        section.text.append('Numbered points of ours: ' + '; '.join(keys)
                            + '.')
    if rows:
        section.add_table(pd.DataFrame(
            [{k: v for k, v in r.items() if k != '_lat'} for r in rows]),
            COST_CAPTION)
    else:
        section.text.append('No run of ours has a latency yet '
                            '(experiments/measure_cost.py).')
    return section
