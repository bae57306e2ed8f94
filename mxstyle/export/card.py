"""The model card (``model.json``) of an exported model folder, and its verification.

A model folder written by :func:`mxstyle.export.export_model` holds the model files and
``model.json``, which names every file by role with its size and sha256::

    "files": {"onnx_fp32": {"path": "NAME.onnx", "sha256": "...", "bytes": 1234567}, ...}

:func:`verify_model_dir` checks every listed file (or only the roles asked for) and raises a
:class:`ModelError` naming the file that is missing, truncated or modified. This module imports
no MXNet or ONNX, so a runtime can check a folder before it loads anything heavy.
"""
import json
import os
from pathlib import Path

from ..errors import MxstyleError
from ..files import sha256_file  # also re-exported: the runtime imports it from here

__all__ = ["CARD_FILE", "CARD_FORMAT", "FILE_ROLES", "ModelError", "sha256_file", "file_record",
           "read_card", "verify_model_dir"]

#: Name of the model card inside a model folder.
CARD_FILE = "model.json"
#: Version of the card layout; readers refuse a card with a newer one.
CARD_FORMAT = 1
#: Roles a card's ``files`` may hold (``style_image`` is the optional ``style.jpg``).
FILE_ROLES = ("mxnet_fp32_symbol", "mxnet_fp32_params", "onnx_fp32", "onnx_int8",
              "mxnet_int8_symbol", "mxnet_int8_params", "style_image")


class ModelError(MxstyleError):
    """An exported model folder is missing files, or a file is corrupt, truncated or modified."""


def file_record(folder, filename):
    """``{"path", "sha256", "bytes"}`` of ``folder/filename`` (path relative to the card)."""
    path = Path(folder) / filename
    return {"path": filename, "sha256": sha256_file(path), "bytes": path.stat().st_size}


def read_card(path):
    """The card of a model folder (or of a ``model.json`` path), without checking the files.

    Raises :class:`ModelError` when the card is missing, unreadable or of a newer format.
    """
    path = Path(path)
    card_path = path if path.name == CARD_FILE and path.is_file() else path / CARD_FILE
    if not path.exists():
        raise ModelError(f"{path}: no such model folder")
    try:
        card = json.loads(card_path.read_text())
    except FileNotFoundError:
        raise ModelError(f"{path}: not a model folder (it has no {CARD_FILE}); export one with "
                         "tools/export.py") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"{card_path}: unreadable model card ({exc}); re-export the model") from None
    if not isinstance(card, dict) or not isinstance(card.get("files"), dict):
        raise ModelError(f"{card_path}: not an mxstyle model card (no 'files' table); re-export the model")
    fmt = card.get("format")
    if not isinstance(fmt, int) or fmt > CARD_FORMAT:
        raise ModelError(f"{card_path}: model card format {fmt!r} is not supported (this mxstyle reads "
                         f"format {CARD_FORMAT}); upgrade mxstyle or re-export the model")
    return card


def verify_model_dir(path, roles=None):
    """Check the files of a model folder against its card; returns the card (a dict).

    ``roles`` limits the check to those roles (e.g. ``["onnx_fp32"]`` before loading only that
    file); a requested role the card does not list is an error. Each file must lie inside the
    folder, exist, have the recorded size and the recorded sha256. Raises :class:`ModelError`
    naming the file: missing, truncated (shorter than recorded), or corrupt/tampered (another
    size or another sha256).
    """
    folder = Path(path)
    if folder.name == CARD_FILE and folder.is_file():
        folder = folder.parent
    card = read_card(folder)
    files = card["files"]
    if roles is None:
        roles = list(files)
    else:
        roles = [roles] if isinstance(roles, str) else list(roles)
        missing = [r for r in roles if r not in files]
        if missing:
            raise ModelError(f"{folder}: the model card lists no {', '.join(missing)} file "
                             f"(it has: {', '.join(files) or 'none'}); re-export the model"
                             + (" with --int8" if any("int8" in r for r in missing) else ""))
    root = folder.resolve()
    for role in roles:
        record = files[role]
        try:
            rel, expected_sha, expected_bytes = record["path"], record["sha256"], int(record["bytes"])
        except (TypeError, KeyError, ValueError):
            raise ModelError(f"{folder / CARD_FILE}: bad entry for {role!r} (needs path, sha256, bytes); "
                             "re-export the model") from None
        target = (root / rel).resolve()
        if os.path.isabs(rel) or root not in target.parents:
            raise ModelError(f"{folder / CARD_FILE}: file {rel!r} of {role} lies outside the model folder; "
                             "the card was tampered with")
        if not target.is_file():
            raise ModelError(f"{folder / rel}: missing ({role} listed in {CARD_FILE}); re-export the model")
        size = target.stat().st_size
        if size < expected_bytes:
            raise ModelError(f"{folder / rel}: truncated ({size} of {expected_bytes} bytes); the file is "
                             "incomplete or corrupt: copy it again or re-export the model")
        if size != expected_bytes:
            raise ModelError(f"{folder / rel}: {size} bytes where the card says {expected_bytes}; the file "
                             "is corrupt or was tampered with: copy it again or re-export the model")
        if sha256_file(target) != expected_sha:
            raise ModelError(f"{folder / rel}: sha256 does not match {CARD_FILE}; the file is corrupt or "
                             "was tampered with: copy it again or re-export the model")
    return card
