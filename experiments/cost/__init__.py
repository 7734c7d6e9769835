"""What runs cost.

- :mod:`~experiments.cost.model_cost`: FLOPs and per-image latency of a
  finished run (``measure_cost.py``); :mod:`~experiments.cost.onnx_cost`:
  its ONNX export timed under onnxruntime;
- :mod:`~experiments.cost.plan_cost`: wall time and device-hours of planned
  runs from ``iteration_rates.csv``; :mod:`~experiments.cost.probe_rate`:
  the short training that measures a rate.
"""
