"""The paper's published numbers (``analysis/data/published.csv``)."""
import os.path as osp
from typing import Optional

import pandas as pd

PUBLISHED = osp.join(osp.dirname(osp.abspath(__file__)), 'data',
                     'published.csv')


def published_table(path: Optional[str] = None) -> pd.DataFrame:
    return pd.read_csv(path or PUBLISHED)
