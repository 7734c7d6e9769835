"""The run-directory contract: what a run writes where, how it is read
back, and the grid's results table. The runner writes through it; analysis
and reports read through it (and import nothing else of ``experiments``)."""
from experiments.store.coco_names import AREA_MAX, COCO_AREAS, TASKS
from experiments.store.files import (
                                     DamagedFileError,
                                     atomic_write,
                                     atomic_write_json,
                                     atomic_write_text,
                                     finite_numbers,
                                     is_number,
                                     read_json,
                                     set_aside,
                                     warn,
)
from experiments.store.layout import (
                                     ATTEMPTS,
                                     CHECKPOINT_NAME,
                                     COST,
                                     DETECTIONS,
                                     FAILED,
                                     FINISHED,
                                     MANIFEST,
                                     ORT_COST,
                                     PROJECT_ROOT,
                                     RESULTS,
                                     RUN_CONFIG,
                                     RUN_LOG,
                                     RUN_META,
                                                                      detections_file,
                                     detections_prefix,
                                     project_path,
                                     run_dir_name,
                                     run_label,
)
from experiments.store.results import (
                                     COLUMNS,
                                     METRIC_COLUMNS,
                                     TEXT_COLUMNS,
                                     coco_metrics_to_row,
                                     collect_rows,
                                     cost_columns,
                                     latency_device,
                                     listed_run_dirs,
                                     load_results_table,
                                     read_results_csv,
                                     write_results,
)
from experiments.store.run_dir import (
                                     append_attempt,
                                     evaluation_gt_file,
                                     finished_row,
                                     last_checkpoint_target,
                                     read_attempts,
                                     read_run_meta,
                                     run_status,
                                     saved_checkpoints,
                                     schedule_length,
)

__all__ = [
    'AREA_MAX', 'COCO_AREAS',
    'ATTEMPTS', 'CHECKPOINT_NAME', 'COLUMNS', 'COST', 'DETECTIONS', 'FAILED',
    'FINISHED', 'MANIFEST', 'METRIC_COLUMNS', 'ORT_COST', 'PROJECT_ROOT',
    'RESULTS', 'RUN_CONFIG', 'RUN_LOG', 'RUN_META', 'TASKS', 'TEXT_COLUMNS',
    'DamagedFileError', 'append_attempt', 'atomic_write', 'atomic_write_json',
    'atomic_write_text', 'coco_metrics_to_row', 'collect_rows',
    'cost_columns', 'detections_file', 'detections_prefix',
    'evaluation_gt_file', 'finished_row', 'finite_numbers', 'is_number',
    'last_checkpoint_target', 'latency_device', 'listed_run_dirs',
    'load_results_table', 'project_path', 'read_attempts', 'read_json',
    'read_results_csv',
    'read_run_meta', 'run_dir_name', 'run_label', 'run_status',
    'saved_checkpoints', 'schedule_length', 'set_aside', 'warn',
    'write_results'
]
