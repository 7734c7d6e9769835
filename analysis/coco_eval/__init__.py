"""COCO re-evaluation of saved detections, per image.

- :mod:`~analysis.coco_eval.constants`: COCOeval's thresholds, detection cap
  and area ranges (the one definition of each);
- :mod:`~analysis.coco_eval.detections`: reading and checking COCO results,
  mask areas;
- :mod:`~analysis.coco_eval.fast_match`: the compiled per-image matcher
  (numba), equal to ``COCOeval.evaluate()``; :mod:`~analysis.coco_eval.engine`
  says which engine runs;
- :mod:`~analysis.coco_eval.area_table`: one area range's matches, and
  accumulate's precision for any image weights;
- :mod:`~analysis.coco_eval.image_eval`: :class:`ImageEval`, a result set
  matched once per image;
- :mod:`~analysis.coco_eval.counted`: which detections COCOeval counts in
  an area range (for tools without ranges: TIDE);
- :mod:`~analysis.coco_eval.eval_cache`: evaluations cached next to the
  detections;
- :mod:`~analysis.coco_eval.run_eval`: a run's evaluation, and the report's
  evaluations of many runs;
- :mod:`~analysis.coco_eval.bootstrap`: image-bootstrap intervals.
"""
