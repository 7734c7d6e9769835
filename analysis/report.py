"""Markdown and self-contained HTML reports from a results table."""
import base64
import dataclasses
import datetime
import html
import os
import os.path as osp
import platform
import re
import subprocess
from importlib import metadata
from typing import Dict, List, Optional, Sequence, Tuple

import matplotlib.pyplot as plt
import pandas as pd

from analysis.results import UNFINISHED, summarize
from analysis.sections.comparison import (COMPARISON_CAPTION,
                                          comparison_table, plot_ap_by_size)
from analysis.sections.provenance import arm_differences
from experiments.store import run_label

@dataclasses.dataclass
class Section:
    """A report section: text, tables and figures, in that order.

    Attributes:
        title: The section's heading.
        text: Paragraphs before the tables.
        tables: The tables, in order.
        captions: ``captions[i]`` is printed just above ``tables[i]`` (what
            the table shows and what its columns mean); a table past the end
            of the list has none. :meth:`add_table` keeps the two in step.
        figures: PNG paths, after the tables.
    """

    title: str
    text: List[str] = dataclasses.field(default_factory=list)
    tables: List[pd.DataFrame] = dataclasses.field(default_factory=list)
    figures: List[str] = dataclasses.field(default_factory=list)
    captions: List[str] = dataclasses.field(default_factory=list)

    def add_table(self, table: pd.DataFrame, caption: str) -> None:
        """Append a table with the caption shown above it.

        Args:
            table: The table.
            caption: One or two sentences: what a row is, what the columns
                that are not self-evident mean.
        """
        self.captions += [''] * (len(self.tables) - len(self.captions))
        self.tables.append(table)
        self.captions.append(caption)

    def captioned_tables(self) -> List[Tuple[str, pd.DataFrame]]:
        """(caption or '', table) of every non-empty table, in order."""
        return [(self.captions[i] if i < len(self.captions) else '', t)
                for i, t in enumerate(self.tables) if not t.empty]


def save_figure(fig, path: str, dpi: int = 100,
                rect: Tuple[float, float, float, float] = (0, 0, 1, 1)
                ) -> str:
    """Lay out, write and close a figure; return its path.

    Args:
        fig: The figure.
        path: Where the PNG goes.
        dpi: Its resolution.
        rect: The part of the figure (fractions) the axes are laid out in;
            the rest is left for what is placed around them (a legend).
    """
    fig.tight_layout(rect=rect)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def _provenance(results_path: str, grid_path: Optional[str],
                df: pd.DataFrame) -> List[str]:
    done = df[df.status == 'finished']
    datasets = []
    for name, g in done.groupby('dataset'):
        images = g.val_images.dropna()
        instances = g.val_instances.dropna()
        datasets.append(
            f'{name}: {int(images.iloc[0]) if len(images) else "?"} '
            f'evaluation images, '
            f'{int(instances.iloc[0]) if len(instances) else "?"} instances')
    return [
        f'Results table: `{results_path}`',
        f'Grid: `{grid_path}`' if grid_path else 'Grid: not given (runs '
        'missing from the table cannot be listed as "not run")',
        f'Runs: {len(done)} finished, {int((df.status == "failed").sum())} '
        f'failed, {int((df.status == UNFINISHED).sum())} started but not '
        f'finished, {int((df.status == "not run").sum())} not run',
        *([arms] if (arms := arm_differences(df)) else []),
        'Datasets: ' + ('; '.join(datasets) if datasets else 'none finished'),
        'Metrics: COCO AP x100 from pycocotools (mmdet CocoMetric) on each '
        'dataset\'s evaluation split (mask APs/APm/APl size a mask '
        'detection by its mask\'s area, in every section); "± x" is the '
        'half-width of a t-based 95% interval over seeds, shown only with '
        'two or more seeds.',
        'GFLOPs and ms (median latency per image, batch 1): '
        'experiments/measure_cost.py, on the device named in the SE vs eSE '
        'and speed sections; "–" where not measured. GFLOPs count the '
        'tensor forward as mmdet\'s get_flops.py does: Mask R-CNN\'s '
        'includes its RoI heads on 1000 proposals, CenterMask\'s and '
        'RetinaMask\'s only the dense head, so compare them within a family '
        '(backbone GFLOPs in the SE vs eSE section compare across all).',
        f'Generated: {datetime.datetime.now().isoformat(timespec="seconds")}'
        f' by code {_code_commit()}, {_package_versions()}; machine '
        f'{platform.node() or "?"} ({platform.platform()}, {os.cpu_count()} '
        f'CPU cores, Python {platform.python_version()}). Each run\'s own '
        f'config is in its run dir (`config.py`).',
    ]


def _code_commit() -> str:
    """The checkout's commit (``+ local changes`` when dirty), or ``?``."""
    root = osp.dirname(osp.dirname(osp.abspath(__file__)))
    try:
        commit = subprocess.run(['git', 'rev-parse', '--short=12', 'HEAD'],
                                cwd=root, capture_output=True, text=True,
                                timeout=10).stdout.strip()
        dirty = subprocess.run(['git', 'status', '--porcelain',
                                '--untracked-files=no'], cwd=root,
                               capture_output=True, text=True,
                               timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return '?'
    return (commit or '?') + (' + local changes' if dirty else '')


def _package_versions() -> str:
    found = []
    for name in ('torch', 'mmcv', 'mmengine', 'mmdet', 'pycocotools'):
        try:
            found.append(f'{name} {metadata.version(name)}')
        except metadata.PackageNotFoundError:
            found.append(f'{name} not installed')
    return ', '.join(found)


_NUMBER_CELL = re.compile(r'^[-+]?[\d.]+(e[-+]?\d+)?( ± [\d.]+)?'
                          r'( \[[-\d., ]+\])?$|^[–-]?$|^nan$')


def _table_html(table: pd.DataFrame, table_id: str,
                caption: str = '') -> str:
    """An HTML table whose number columns are right-aligned, text left,
    with its caption (``<caption>``, above it) when it has one."""
    text = table.to_html(index=False, border=0, classes='results',
                         na_rep='–', table_id=table_id)
    if caption:
        start = text.index('>', text.index('<table')) + 1
        text = (text[:start] + f'<caption>{_html_text(caption)}</caption>'
                + text[start:])
    rules = [f'#{table_id} td:nth-child({i + 1}),'
             f'#{table_id} th:nth-child({i + 1}){{text-align:right}}'
             for i, col in enumerate(table.columns)
             if len(table) and all(_NUMBER_CELL.match(str(v).strip())
                                   for v in table[col].tolist())]
    return (f'<style>{"".join(rules)}</style>' if rules else '') + text


def _md_table(t: pd.DataFrame, caption: str = '') -> str:
    """Markdown table with "–" where a value is missing, as in the HTML,
    after its caption (pandoc's ``Table:`` paragraph) when it has one."""
    table = t.astype(object).where(t.notna(), '–').to_markdown(index=False)
    return f'Table: {caption}\n\n{table}' if caption else table


def _html_text(text: str) -> str:
    """Escaped text with `code` spans as <code>, not literal backticks."""
    parts = html.escape(text).split('`')
    return ''.join(f'<code>{p}</code>' if i % 2 else p
                   for i, p in enumerate(parts))


def _embedded_png(path: str, alt: str) -> str:
    with open(path, 'rb') as f:
        data = base64.b64encode(f.read()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def section_anchor(title: str) -> str:
    return re.sub(r'[^a-z0-9]+', '-', title.lower()).strip('-')


def _failures(df: pd.DataFrame) -> List[str]:
    failed = df[df.status == 'failed']
    return [f'{run_label(r.model, r.arm, r.dataset, r.seed)} '
            f'(run {r.run_id}): {r.error}' for _, r in failed.iterrows()]


def write_report(df: pd.DataFrame, out_dir: str, results_path: str,
                 grid_path: Optional[str] = None,
                 title: str = 'Instance segmentation grid report',
                 description: str = '',
                 sections: Sequence = ()) -> Dict[str, str]:
    """Write ``report.md``, ``report.html`` and figures into ``out_dir``.

    Args:
        df: Results rows, with ``not run`` rows for missing runs.
        out_dir: Output directory (created).
        results_path: Where ``df`` came from (printed as provenance).
        grid_path: The grid file that defined the expected runs.
        title: The report's heading.
        description: What the grid is for (the grid's ``description``).
        sections: Further sections (:class:`Section`),
            written after the comparison, figures embedded in the HTML.

    Returns:
        Paths by kind: ``markdown``, ``html`` and ``ap_by_size`` (if drawn).
    """
    os.makedirs(out_dir, exist_ok=True)
    summary = summarize(df)
    table = comparison_table(summary)
    figure = plot_ap_by_size(summary, osp.join(out_dir, 'ap_by_size.png'))
    provenance = _provenance(results_path, grid_path, df)
    failures = _failures(df)
    paths = {'markdown': osp.join(out_dir, 'report.md'),
             'html': osp.join(out_dir, 'report.html')}

    titles = ['Provenance', 'Comparison'] + (
        ['AP by object size'] if figure else []) + [
        sec.title for sec in sections] + (['Failed runs'] if failures else [])
    md = [f'# {title}', '', description, '', '## Contents', '']
    md += [f'- [{t}](#{section_anchor(t)})' for t in titles]
    md += ['', '## Provenance', '']
    md += [f'- {p}' for p in provenance]
    md += ['', '## Comparison', '',
           _md_table(table, COMPARISON_CAPTION), '']
    if figure:
        md += ['## AP by object size', '',
               f'![AP by COCO area bin]({osp.basename(figure)})', '']
    for sec in sections:
        md += [f'## {sec.title}', ''] + [*sec.text, '']
        md += [_md_table(t, c) + '\n' for c, t in sec.captioned_tables()]
        md += [f'![{sec.title}]({osp.basename(p)})\n' for p in sec.figures]
    if failures:
        md += ['## Failed runs', ''] + [f'- {f}' for f in failures] + ['']
    with open(paths['markdown'], 'w') as f:
        f.write('\n'.join(md))

    def heading(t: str) -> str:
        return f'<h2 id="{section_anchor(t)}">{html.escape(t)}</h2>'

    parts = [f'<h1>{html.escape(title)}</h1>',
             f'<p>{_html_text(description)}</p>',
             '<nav><h2>Contents</h2><ol>']
    parts += [f'<li><a href="#{section_anchor(t)}">{html.escape(t)}</a></li>'
              for t in titles]
    parts += ['</ol></nav>', heading('Provenance'), '<ul>']
    parts += [f'<li>{_html_text(p)}</li>' for p in provenance]
    parts += ['</ul>', heading('Comparison'),
              _table_html(table, 'table-comparison', COMPARISON_CAPTION)]
    if figure:
        parts += [heading('AP by object size'),
                  _embedded_png(figure, 'AP by COCO area bin')]
        paths['ap_by_size'] = figure
    for sec in sections:
        parts.append(heading(sec.title))
        parts += [f'<p>{_html_text(t)}</p>' for t in sec.text]
        parts += [_table_html(t, f'table-{section_anchor(sec.title)}-{i}',
                              c)
                  for i, (c, t) in enumerate(sec.captioned_tables())]
        for p in sec.figures:
            parts.append(_embedded_png(p, sec.title))
            paths[osp.splitext(osp.basename(p))[0]] = p
    if failures:
        parts += [heading('Failed runs'), '<ul>']
        parts += [f'<li>{_html_text(x)}</li>' for x in failures] + ['</ul>']
    style = ('body{font-family:sans-serif;max-width:1400px;margin:2em auto}'
             'table.results{border-collapse:collapse;font-size:13px}'
             'table.results td,table.results th{padding:3px 8px;'
             'border-bottom:1px solid #ddd;text-align:left}'
             'table.results caption{caption-side:top;text-align:left;'
             'padding:12px 0 4px;font-size:14px;color:#333}'
             'img{max-width:100%}code{background:#f4f4f4;padding:0 2px}'
             'nav ol{columns:2}')
    with open(paths['html'], 'w') as f:
        f.write(f'<!DOCTYPE html><html><head><meta charset="utf-8">'
                f'<title>{html.escape(title)}</title><style>{style}</style>'
                f'</head><body>{"".join(parts)}</body></html>')
    return paths


__all__ = ['Section', 'save_figure', 'section_anchor', 'write_report']
