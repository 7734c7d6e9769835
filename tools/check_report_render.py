"""Render a report in headless Chromium and check that every figure shows.

    python tools/check_report_render.py work_dirs/smoke/report/report.html

Decodes every embedded ``<img>`` (it must be a PNG that Pillow opens, with a
non-zero size), then has Chromium lay out the page with a script that counts
images the browser itself decoded (``naturalWidth > 0``) and writes a
full-page screenshot next to the report. Needs ``/usr/bin/chromium``
(Debian: ``apt-get install chromium``).
"""
import argparse
import base64
import io
import os.path as osp
import re
import shutil
import subprocess
import sys
import tempfile

from PIL import Image

FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
         '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--hide-scrollbars']
PROBE = ('<script>window.addEventListener("load",()=>{const i=[...document.'
         'images];document.title="images "+i.filter(x=>x.complete&&x.'
         'naturalWidth>0).length+"/"+i.length;});</script>')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('html')
    parser.add_argument('--chromium', default=shutil.which('chromium')
                        or '/usr/bin/chromium')
    parser.add_argument('--height', type=int, default=9000)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    text = open(args.html).read()
    sources = re.findall(r'<img[^>]*src="([^"]+)"', text)
    for i, src in enumerate(sources):
        if not src.startswith('data:image/png;base64,'):
            print(f'figure {i}: not embedded ({src[:60]})')
            return 1
        img = Image.open(io.BytesIO(base64.b64decode(src.split(',', 1)[1])))
        print(f'figure {i}: PNG {img.size[0]}x{img.size[1]}')
    with tempfile.TemporaryDirectory() as tmp:
        probe = osp.join(tmp, 'probe.html')
        with open(probe, 'w') as f:
            f.write(text.replace('</body>', PROBE + '</body>'))
        dom = subprocess.run(
            [args.chromium, *FLAGS, f'--user-data-dir={tmp}/profile',
             '--virtual-time-budget=5000', '--dump-dom', f'file://{probe}'],
            capture_output=True, text=True, timeout=120).stdout
        shot = osp.join(osp.dirname(osp.abspath(args.html)),
                        'report_screenshot.png')
        subprocess.run(
            [args.chromium, *FLAGS, f'--user-data-dir={tmp}/profile2',
             f'--screenshot={shot}', f'--window-size=1400,{args.height}',
             f'file://{osp.abspath(args.html)}'],
            capture_output=True, timeout=120)
    title = re.search(r'<title>(images \d+/\d+)</title>', dom)
    shown = title.group(1) if title else 'images ?'
    print(f'Chromium decoded {shown} (expected {len(sources)}); screenshot '
          f'{shot}')
    return 0 if shown == f'images {len(sources)}/{len(sources)}' else 1


if __name__ == '__main__':
    sys.exit(main())
