"""Model folders (``models/NAME/``): finding them, reading their card, verifying their files.

A model folder holds ``model.json`` (the *card*) and the files it lists::

    {"format": 1, "name": ..., "arch": ..., "stride": 4, "flops_per_pixel": ...,
     "style": {"image": "style.jpg" or null, ...},
     "files": {ROLE: {"path": "NAME.onnx", "sha256": ..., "bytes": ..., ...}, ...}}

Roles: ``mxnet_fp32_symbol`` + ``mxnet_fp32_params``, ``onnx_fp32``, and optionally ``onnx_int8``
and ``mxnet_int8_symbol`` + ``mxnet_int8_params`` (present only if they passed the export's
fidelity gate). The runtime checks the sha256 and size of every file it is about to use, so a
tampered or truncated file is refused with an error naming it.
"""

import hashlib
import os
from pathlib import Path

# the exporter owns the card format and the exception (light module: no MXNet / ONNX imports)
from ..export.card import CARD_FILE, ModelError, read_card, sha256_file

__all__ = ['ModelError', 'CARD_FILE', 'DEFAULT_MODEL', 'model_search_paths', 'list_available_models',
           'resolve_model_dir', 'load_card', 'file_path', 'load_verified', 'verify_file', 'sha256_file',
           'ROLES']

#: The model ``Stylizer()`` loads when given no name (one of the shipped models).
DEFAULT_MODEL = 'langlois'

#: Backend -> precision -> the card roles it needs.
ROLES = {
    ('onnxruntime', 'fp32'): ('onnx_fp32',),
    ('onnxruntime', 'int8'): ('onnx_int8',),
    ('mxnet', 'fp32'): ('mxnet_fp32_symbol', 'mxnet_fp32_params'),
    ('mxnet', 'int8'): ('mxnet_int8_symbol', 'mxnet_int8_params'),
    ('opencv', 'fp32'): ('onnx_fp32',),
}


def model_search_paths():
    """Folders searched for a model given by name, in order:

    1. ``$MXSTYLE_MODELS`` (``os.pathsep``-separated folders of model folders);
    2. the shipped models: inside an installed package ``mxstyle/shipped_models/`` (setup.py puts
       the repository's ``models/`` there), in a source checkout (or an editable install) the
       repository's ``models/`` folder itself.
    """
    import mxstyle

    paths = []
    env = os.environ.get('MXSTYLE_MODELS')
    if env:
        paths += [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    package = Path(mxstyle.__file__).resolve().parent
    installed = package / 'shipped_models'
    checkout = package.parent / 'models'
    if installed.is_dir():
        paths.append(installed)
    elif (package.parent / 'setup.py').is_file() and checkout.is_dir():  # not site-packages/models
        paths.append(checkout)
    return paths


def list_available_models():
    """Sorted names of the model folders (folders holding a ``model.json``) on the search path."""
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
            raise ModelError(f'{path}: not a model folder (it has no {CARD_FILE}); export one with '
                             'tools/export.py or give the name of an exported model')
        return path
    looks_like_path = os.sep in text or (os.altsep and os.altsep in text) or text.startswith('.')
    if not looks_like_path:
        for root in model_search_paths():
            if (root / text / CARD_FILE).is_file():
                return root / text
    available = list_available_models()
    where = ', '.join(str(p) for p in model_search_paths())
    raise ModelError(f'model {text!r} not found (looked for a folder of that path, and for that '
                     f'name in {where}); available models: '
                     f'{", ".join(available) if available else "none (export one first)"}')


def load_card(model_dir):
    """Read and sanity-check ``model_dir/model.json``; returns the card dict."""
    card = read_card(model_dir)
    try:
        stride = int(card.get('stride', 0))
    except (TypeError, ValueError):
        stride = 0
    if stride < 1:
        raise ModelError(f'{Path(model_dir) / CARD_FILE}: bad or missing "stride" '
                         f'{card.get("stride")!r} in the model card; re-export the model')
    return card


def file_path(model_dir, card, role):
    """Path of the file with ``role`` (not verified)."""
    entry = card['files'][role]
    rel = entry.get('path') if isinstance(entry, dict) else None
    if not isinstance(rel, str) or not rel or os.path.isabs(rel) or '..' in Path(rel).parts:
        raise ModelError(f'{Path(model_dir) / CARD_FILE}: file {rel!r} of {role} lies outside the '
                         'model folder or is not a path; the card is damaged or was tampered with')
    return Path(model_dir) / rel


def load_verified(model_dir, card, role):
    """The content of the ``role`` file, after checking its size and sha256 against the card.

    The bytes returned are the bytes checked, so the file cannot change between the check and
    the use. Raises :class:`ModelError` naming the file for a missing, truncated or modified one.
    """
    path = file_path(model_dir, card, role)
    entry = card['files'][role]
    what = f'{path} ({role})'
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelError(f'{what}: file is missing; the model folder is incomplete, '
                         're-export or re-copy it') from None
    except OSError as exc:
        raise ModelError(f'{what}: cannot read it ({exc.strerror or exc})') from None
    expected_size = entry.get('bytes')
    if expected_size is not None and len(data) != int(expected_size):
        state = 'truncated' if len(data) < int(expected_size) else 'larger than recorded'
        raise ModelError(f'{what}: file is {state} ({len(data)} bytes, the model card says '
                         f'{int(expected_size)}); re-export or re-copy the model')
    expected = entry.get('sha256')
    if not expected:
        raise ModelError(f'{what}: the model card records no sha256 for it; re-export the model')
    actual = hashlib.sha256(data).hexdigest()
    if actual != str(expected).lower():
        raise ModelError(f'{what}: sha256 mismatch (file {actual[:16]}..., model card '
                         f'{str(expected)[:16]}...); the file was modified or damaged, '
                         're-export or re-copy the model')
    return data


def verify_file(model_dir, card, role):
    """Check the size and sha256 of the ``role`` file against the card; returns its path."""
    load_verified(model_dir, card, role)
    return file_path(model_dir, card, role)
