"""The shop dataset (and the on-call lesson's library: `kinds`, `library`): generated from a fixed seed
(`generate`), bulk-loaded and swapped in atomically (`build`),
described by its own metadata (`info`), copied for lessons that change it (`copies`), and `python -m helpers
data` (`cli`). The names below are the ones the rest of the course uses."""

from .build import build_dataset, ensure_dataset
from .copies import copy_dataset, copy_exists, drop_copy
from .generate import generate_rows
from .info import SEED, TABLE_ORDER, DatasetInfo, content_fingerprint, read_info, row_counts
from .kinds import LIBRARY, SHOP, Dataset, dataset_url

__all__ = [
    "LIBRARY",
    "SEED",
    "SHOP",
    "TABLE_ORDER",
    "Dataset",
    "DatasetInfo",
    "build_dataset",
    "content_fingerprint",
    "copy_dataset",
    "copy_exists",
    "dataset_url",
    "drop_copy",
    "ensure_dataset",
    "generate_rows",
    "read_info",
    "row_counts",
]
