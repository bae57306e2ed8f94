"""Export a trained generator as a self-describing model folder, and check such a folder.

>>> from mxstyle.export import export_model, verify_model_dir
>>> card = export_model("runs/langlois", "langlois", "models/langlois", int8=True, calib="photos/")
>>> card = verify_model_dir("models/langlois")          # raises ModelError if a file was altered

- :mod:`.exporter`    ``export_model``: checkpoint -> MXNet symbol/params, ONNX, int8, ``model.json``
- :mod:`.onnx_export` MXNet -> ONNX opset 13 with dynamic sizes, tidied for onnxruntime and OpenCV
- :mod:`.quantize`    int8 for onnxruntime and MXNet (oneDNN), calibrated on photos, kept only
  when they stay within a PSNR bound of fp32
- :mod:`.card`        the model card, ``verify_model_dir`` and :class:`ModelError` (no heavy imports)
"""
from .card import CARD_FILE, CARD_FORMAT, FILE_ROLES, ModelError, read_card, sha256_file, verify_model_dir  # noqa: F401
from .exporter import ExportError, export_model, resolve_checkpoint, sanitize_options  # noqa: F401

__all__ = ["CARD_FILE", "CARD_FORMAT", "FILE_ROLES", "ModelError", "ExportError", "export_model",
           "read_card", "resolve_checkpoint", "sanitize_options", "sha256_file", "verify_model_dir"]
