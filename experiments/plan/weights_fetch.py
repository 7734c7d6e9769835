"""Download a grid's initial weights into the caches its runs read (issue
37); ``tools/fetch_weights.py`` is the command line.

Files torch hub names ``<name>-<sha256 prefix>.<ext>`` are checked against
that prefix, as ``torch.hub.load_state_dict_from_url`` checks them; the
official VoVNet classifiers (``checkpoints/...``, centermask2's README) and
timm's Hugging Face files publish no checksum in their names and are taken
as downloaded.
"""
import os
import os.path as osp
from typing import List, Optional

from experiments.plan.weights_check import WeightSource

# The official ImageNet classifiers the VoVNet configs read from
# checkpoints/ (docs/weights.md; links of centermask2's README).
_DROPBOX = 'https://dl.dropbox.com/s/{}/{}?dl=1'
KNOWN_DOWNLOADS = {name: _DROPBOX.format(key, name) for name, key in (
    ('vovnet19_ese_detectron2.pth', 'rptgw6stppbiw1u'),
    ('vovnet19_ese_slim_detectron2.pth', '8h5ybmi4ftbcom0'),
    ('vovnet19_ese_slim_dw_detectron2.pth', 'f3s7ospitqoals1'),
    ('vovnet39_ese_detectron2.pth', 'q98pypf96rhtd8y'),
    ('vovnet57_ese_detectron2.pth', '8xl0cb3jj51f45a'),
    ('vovnet99_ese_detectron2.pth', '1mlv31coewx8trd'),
)}


class FetchError(RuntimeError):
    """A weight cannot be fetched; the message is one line naming it."""


def known_download(path: str) -> Optional[str]:
    """Where a local checkpoint a config names is published, if known."""
    return KNOWN_DOWNLOADS.get(osp.basename(path))


def fetch(source: WeightSource, progress: bool = False) -> str:
    """Download ``source`` to its ``cache_path`` unless it is there.

    Returns:
        ``'present'`` or ``'downloaded'``.

    Raises:
        FetchError: No URL is known, the download fails, or the file does
            not match its published sha256 prefix (nothing is left at
            ``cache_path`` then).
    """
    if osp.isfile(source.cache_path):
        return 'present'
    where = f'{source.config}: {source.key} = {source.url}'
    if not source.download_url:
        raise FetchError(f'{where}: no download is known for it; see '
                         f'docs/weights.md for how to make '
                         f'{source.cache_path}')
    import torch.hub
    os.makedirs(osp.dirname(source.cache_path), exist_ok=True)
    try:
        # Writes a temporary file beside the destination and moves it in
        # only when the hash prefix matches.
        torch.hub.download_url_to_file(source.download_url,
                                       source.cache_path,
                                       hash_prefix=source.sha256,
                                       progress=progress)
    except RuntimeError as e:
        if 'invalid hash value' in str(e):
            raise FetchError(
                f'{where}: {source.download_url} does not match its '
                f'published sha256 prefix {source.sha256} ({e}); nothing '
                f'was written to {source.cache_path}') from None
        raise FetchError(f'{where}: {source.download_url}: {e}') from None
    except OSError as e:
        raise FetchError(f'{where}: cannot download '
                         f'{source.download_url}: {e}') from None
    return 'downloaded'


def unique_sources(sources: List[WeightSource]) -> List[WeightSource]:
    """One source per file the runs read (many runs share a backbone)."""
    seen, out = set(), []
    for source in sources:
        if source.cache_path not in seen:
            seen.add(source.cache_path)
            out.append(source)
    return out
