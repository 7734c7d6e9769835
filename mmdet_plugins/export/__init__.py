"""ONNX export of CenterMask, CenterMask-Lite, RetinaMask and Mask R-CNN.

Not imported by ``import mmdet_plugins``: it needs onnx, onnxscript and
onnxruntime only when exporting (``tools/export_onnx.py``). See
``graphs.py`` for what the exported graph computes, ``onnx_inference.py``
for running it without this project.
"""
