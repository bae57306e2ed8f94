"""Export a trained generator as a self-describing model folder, and check such a folder.

>>> from mxstyle.export import export_model
>>> from mxstyle.model_folder import verify_model_dir
>>> card = export_model("runs/langlois", "langlois", "models/langlois", int8=True, calib="photos/")
>>> card = verify_model_dir("models/langlois")          # raises ModelError if a file was altered

- :mod:`.exporter`    ``export_model``: checkpoint -> MXNet symbol/params, ONNX, int8, ``model.json``
- :mod:`.options`     ``ExportOptions``: every export setting, validated (and the CLI's options)
- :mod:`.onnx_export` MXNet -> ONNX opset 13 with dynamic sizes, tidied for onnxruntime and OpenCV
- :mod:`.quantize`    int8 for onnxruntime and MXNet (oneDNN), calibrated on photos, kept only
  when they stay within a PSNR bound of fp32

The model folder's format (the card, its roles, verification) is :mod:`mxstyle.model_folder`.
"""
from .exporter import ExportError, export_model, resolve_checkpoint, sanitize_options  # noqa: F401
from .options import ExportOptions  # noqa: F401

__all__ = ["ExportError", "ExportOptions", "export_model", "resolve_checkpoint", "sanitize_options"]
