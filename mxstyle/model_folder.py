"""Model folders (``models/NAME/``): the card ``model.json``, the verified files it lists, and
where model folders are found by name. The exporter writes them, the runtime reads them; this
module imports no MXNet or ONNX, so a folder can be checked before anything heavy loads.

A card names every file by *role* with its size and sha256::

    {"format": 1, "name": ..., "arch": ..., "stride": 4, "flops_per_pixel": ...,
     "style": {"image": "style.jpg" or null, ...},
     "files": {ROLE: {"path": "NAME.onnx", "sha256": ..., "bytes": ...}, ...}}

Roles (:data:`FILE_ROLES`): ``mxnet_fp32_symbol`` + ``mxnet_fp32_params``, ``onnx_fp32``, and,
present only when they passed the export's fidelity gate, ``onnx_int8`` and
``mxnet_int8_symbol`` + ``mxnet_int8_params``; ``style_image`` is the optional ``style.jpg``.
Every file is read through :func:`load_verified`, so a missing, truncated or modified file is
refused with an error naming it.
"""
import hashlib
import json
import os
from pathlib import Path

from .errors import MxstyleError
from .files import sha256_file

__all__ = ["CARD_FILE", "CARD_FORMAT", "FILE_ROLES", "DEFAULT_MODEL", "ModelError", "file_record",
           "read_card", "load_card", "file_path", "load_verified", "verify_model_dir",
           "model_search_paths", "list_available_models", "resolve_model_dir"]

#: Name of the card inside a model folder.
CARD_FILE = "model.json"
#: Version of the card layout; readers refuse a card with a newer one.
CARD_FORMAT = 1
#: Roles a card's ``files`` may hold.
FILE_ROLES = ("mxnet_fp32_symbol", "mxnet_fp32_params", "onnx_fp32", "onnx_int8",
              "mxnet_int8_symbol", "mxnet_int8_params", "style_image")
#: The model ``Stylizer()`` loads when given no name (one of the shipped models).
DEFAULT_MODEL = "langlois_s8"


class ModelError(MxstyleError):
    """A model folder is missing, or one of its files is missing, truncated or modified."""


# ------------------------------------------------------------------------------ the card

def file_record(folder, filename):
    """``{"path", "sha256", "bytes"}`` of ``folder/filename``, for a card being written."""
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
                         "mxstyle export or give the name of an exported model") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"{card_path}: unreadable model card ({exc}); re-export the model") from None
    if not isinstance(card, dict) or not isinstance(card.get("files"), dict):
        raise ModelError(f"{card_path}: not an mxstyle model card (no 'files' table); re-export the model")
    fmt = card.get("format")
    if not isinstance(fmt, int) or fmt > CARD_FORMAT:
        raise ModelError(f"{card_path}: model card format {fmt!r} is not supported (this mxstyle reads "
                         f"format {CARD_FORMAT}); upgrade mxstyle or re-export the model")
    return card


def load_card(model_dir):
    """:func:`read_card` of a model to run: it must also say the network's stride."""
    card = read_card(model_dir)
    try:
        stride = int(card.get("stride", 0))
    except (TypeError, ValueError):
        stride = 0
    if stride < 1:
        raise ModelError(f"{Path(model_dir) / CARD_FILE}: bad or missing \"stride\" "
                         f"{card.get('stride')!r} in the model card; re-export the model")
    return card


# ----------------------------------------------------------------------------- the files

def file_path(model_dir, card, role):
    """Path of the ``role`` file (not verified). It must be a relative path that stays inside
    the folder, also after resolving links: a card pointing elsewhere is refused."""
    folder = Path(model_dir)
    entry = card["files"].get(role)
    rel = entry.get("path") if isinstance(entry, dict) else None
    if not isinstance(rel, str) or not rel or os.path.isabs(rel) or ".." in Path(rel).parts \
            or folder.resolve() not in (folder / rel).resolve().parents:
        raise ModelError(f"{folder / CARD_FILE}: file {rel!r} of {role} lies outside the model "
                         "folder or is not a path; the card is damaged or was tampered with")
    return folder / rel


def load_verified(model_dir, card, role):
    """The content of the ``role`` file, after checking its size and sha256 against the card.

    The bytes returned are the bytes checked, so the file cannot change between the check and
    the use. Raises :class:`ModelError` naming the file for a missing, truncated or modified one.
    """
    if role not in card["files"]:
        raise ModelError(f"{Path(model_dir)}: the model card lists no {role} file (it has: "
                         f"{', '.join(card['files']) or 'none'}); re-export the model"
                         + (" with --int8" if "int8" in role else ""))
    path = file_path(model_dir, card, role)
    entry = card["files"][role]
    what = f"{path} ({role})"
    try:
        expected_size, expected = int(entry["bytes"]), str(entry["sha256"]).lower()
    except (TypeError, KeyError, ValueError):
        raise ModelError(f"{Path(model_dir) / CARD_FILE}: bad entry for {role!r} (needs path, sha256, "
                         "bytes); re-export the model") from None
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelError(f"{what}: file is missing; the model folder is incomplete, "
                         "re-export or re-copy it") from None
    except OSError as exc:
        raise ModelError(f"{what}: cannot read it ({exc.strerror or exc})") from None
    if len(data) != expected_size:
        state = "truncated" if len(data) < expected_size else "larger than recorded"
        raise ModelError(f"{what}: file is {state} ({len(data)} bytes, the model card says "
                         f"{expected_size}); the file is incomplete, corrupt or was tampered with: "
                         "re-export or re-copy the model")
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise ModelError(f"{what}: sha256 mismatch (file {actual[:16]}..., model card "
                         f"{expected[:16]}...); the file is corrupt or was tampered with: "
                         "re-export or re-copy the model")
    return data


def verify_model_dir(path, roles=None):
    """Check the files of a model folder against its card (all, or only ``roles``); returns the
    card. A requested role the card does not list is an error."""
    folder = Path(path)
    if folder.name == CARD_FILE and folder.is_file():
        folder = folder.parent
    card = read_card(folder)
    roles = list(card["files"]) if roles is None else [roles] if isinstance(roles, str) else list(roles)
    for role in roles:
        load_verified(folder, card, role)
    return card


# ---------------------------------------------------------------------- finding folders

def model_search_paths():
    """Folders searched for a model given by name, in order:

    1. ``$MXSTYLE_MODELS`` (``os.pathsep``-separated folders of model folders);
    2. the shipped models: inside an installed package ``mxstyle/shipped_models/`` (setup.py puts
       the repository's ``models/`` there), in a source checkout (or an editable install) the
       repository's ``models/`` folder itself.
    """
    paths = []
    env = os.environ.get("MXSTYLE_MODELS")
    if env:
        paths += [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    package = Path(__file__).resolve().parent
    installed, checkout = package / "shipped_models", package.parent / "models"
    if installed.is_dir():
        paths.append(installed)
    elif (package.parent / "setup.py").is_file() and checkout.is_dir():  # not site-packages/models
        paths.append(checkout)
    return paths


def list_available_models():
    """Sorted names of the model folders (folders holding a card) on the search path."""
    names = set()
    for root in model_search_paths():
        if root.is_dir():
            names.update(p.name for p in root.iterdir() if (p / CARD_FILE).is_file())
    return sorted(names)


def resolve_model_dir(name_or_path):
    """The model folder for a path (a folder or its ``model.json``) or a name on the search path."""
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if path.name == CARD_FILE and path.is_file():
        return path.parent
    if path.is_dir():
        if not (path / CARD_FILE).is_file():
            raise ModelError(f"{path}: not a model folder (it has no {CARD_FILE}); export one with "
                             "mxstyle export or give the name of an exported model")
        return path
    looks_like_path = os.sep in text or (os.altsep and os.altsep in text) or text.startswith(".")
    if not looks_like_path:
        for root in model_search_paths():
            if (root / text / CARD_FILE).is_file():
                return root / text
    available = list_available_models()
    where = ", ".join(str(p) for p in model_search_paths()) or "no model folder (none is installed)"
    raise ModelError(f"model {text!r} not found (looked for a folder of that path, and for that "
                     f"name in {where}); available models: "
                     f"{', '.join(available) if available else 'none (export one first)'}")
