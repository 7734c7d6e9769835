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
from typing import List

from experiments.plan.weights_check import WeightSource


class FetchError(RuntimeError):
    """A weight cannot be fetched; the message is one line naming it."""


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
