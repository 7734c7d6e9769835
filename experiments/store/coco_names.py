"""COCO's names and ranges that the runner's results table, the dataset
statistics and analysis share."""

# mmdet's CocoMetric names (``iou_type``) and the results table's (``task``).
TASKS = (('bbox', 'box'), ('segm', 'mask'))
# The upper end of COCO's open area ranges: pycocotools' 1e5 ** 2 (= 1e10).
AREA_MAX = 1e5 ** 2
# pycocotools' ``COCOeval.Params.areaRng`` (px² of the annotated image).
COCO_AREAS = {'all': (0.0, AREA_MAX), 'small': (0.0, 32.0 ** 2),
              'medium': (32.0 ** 2, 96.0 ** 2), 'large': (96.0 ** 2, AREA_MAX)}
