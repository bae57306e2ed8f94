"""The Open Inference Protocol (KServe v2 / Triton HTTP) for style models: one BYTES input holding
encoded images, one BYTES output holding the encoded results.

Requests come in two forms, as ``tritonclient.http`` sends them:

* JSON: ``{"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": ["<base64>"]}]}``
  (JSON cannot hold raw bytes, so each element is a base64 string);
* the binary tensor data extension: the ``Inference-Header-Content-Length`` header gives the size
  of the JSON header that starts the body, the input says ``"parameters": {"binary_data_size": N}``
  instead of ``data``, and the N bytes after the header hold the tensor: each element as a 4-byte
  little-endian length followed by its bytes.

The response is binary the same way when the request asks for it (``binary_data`` on the output,
or ``binary_data_output`` on the request, which tritonclient sets when it names no outputs), else
JSON with base64 strings. Request ``parameters`` carry the stylize options (strength,
preserve_colors, work_side, format, quality).
"""
import base64
import binascii
import json
import math
import struct
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from .params import HTTPError, parse_bool

__all__ = ["INPUT", "OUTPUT", "VERSION", "InferRequest", "parse_infer", "encode_infer", "model_metadata",
           "server_metadata", "serialize_bytes", "deserialize_bytes"]

INPUT, OUTPUT, DATATYPE = "image", "stylized", "BYTES"
#: The one version each model has.
VERSION = "1"
#: Images in one request at most.
MAX_BATCH = 16
#: Request parameters that belong to the protocol (tritonclient may send them), not to stylizing.
PROTOCOL_PARAMETERS = ("binary_data_output", "sequence_id", "sequence_start", "sequence_end", "priority",
                       "timeout")


@dataclass
class InferRequest:
    images: List[bytes]
    id: Optional[str] = None
    parameters: Dict[str, object] = field(default_factory=dict)
    binary_output: bool = False


def server_metadata(version):
    return {"name": "mxstyle", "version": version, "extensions": ["binary_tensor_data"]}


def model_metadata(name):
    return {"name": name, "versions": [VERSION], "platform": "mxstyle",
            "inputs": [{"name": INPUT, "datatype": DATATYPE, "shape": [-1]}],
            "outputs": [{"name": OUTPUT, "datatype": DATATYPE, "shape": [-1]}]}


def parse_infer(body, header_length=None):
    """An :class:`InferRequest` from a request body (and its ``Inference-Header-Content-Length``);
    a malformed one raises :class:`HTTPError` 400 saying what is wrong."""
    if header_length is None:
        header, binary = body, b""
    else:
        try:
            size = int(header_length)
        except ValueError:
            size = -1
        if not 0 <= size <= len(body):
            raise HTTPError(400, f"Inference-Header-Content-Length {header_length!r} does not fit the "
                                 f"{len(body)}-byte body")
        header, binary = body[:size], body[size:]
    try:
        request = json.loads(header)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HTTPError(400, f"the inference request is not JSON ({exc}); binary tensors need the "
                             "Inference-Header-Content-Length header") from None
    if not isinstance(request, dict):
        raise HTTPError(400, "the inference request must be a JSON object")
    parameters = request.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise HTTPError(400, "'parameters' must be an object")
    inputs = request.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise HTTPError(400, f"the request has no inputs; send one BYTES input named {INPUT!r}")
    images, offset = None, 0
    for tensor in inputs:
        if not isinstance(tensor, dict):
            raise HTTPError(400, "each input must be a JSON object")
        name = tensor.get("name")
        if name != INPUT:
            raise HTTPError(400, f"unknown input {name!r}; the model takes one {DATATYPE} input named {INPUT!r}")
        if images is not None:
            raise HTTPError(400, f"input {INPUT!r} is given twice")
        if tensor.get("datatype") != DATATYPE:
            raise HTTPError(400, f"input {INPUT!r} must have datatype {DATATYPE} (encoded image files), "
                                 f"got {tensor.get('datatype')!r}")
        count = _element_count(tensor.get("shape"))
        size = (tensor.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            if isinstance(size, bool) or not isinstance(size, int) or size < 0 or offset + size > len(binary):
                raise HTTPError(400, f"binary_data_size {size!r} of input {INPUT!r} does not fit the "
                                     f"{len(binary)} bytes after the JSON header")
            images = deserialize_bytes(binary[offset:offset + size])
            offset += size
        elif "data" in tensor:
            images = [_from_base64(item) for item in _flatten(tensor["data"])]
        else:
            raise HTTPError(400, f"input {INPUT!r} has neither data nor binary_data_size")
        if len(images) != count:
            raise HTTPError(400, f"input {INPUT!r} has shape {tensor.get('shape')} but holds {len(images)} "
                                 "elements")
    if offset != len(binary):
        raise HTTPError(400, f"{len(binary) - offset} bytes after the JSON header belong to no input")
    binary_output = parse_bool("binary_data_output", parameters.get("binary_data_output", False))
    for wanted in request.get("outputs") or []:
        if not isinstance(wanted, dict) or wanted.get("name") != OUTPUT:
            name = wanted.get("name") if isinstance(wanted, dict) else wanted
            raise HTTPError(400, f"unknown output {name!r}; the model has one output named {OUTPUT!r}")
        out_parameters = wanted.get("parameters") or {}
        if "binary_data" in out_parameters:
            binary_output = parse_bool("binary_data", out_parameters["binary_data"])
    request_id = request.get("id")
    stylize = {k: v for k, v in parameters.items() if k not in PROTOCOL_PARAMETERS}
    return InferRequest(images, None if request_id is None else str(request_id), stylize, binary_output)


def encode_infer(model_name, request, results, parameters):
    """``(body, headers)`` of the response holding ``results`` (encoded images) as the output."""
    output = {"name": OUTPUT, "datatype": DATATYPE, "shape": [len(results)]}
    response = {"model_name": model_name, "model_version": VERSION, "parameters": parameters,
                "outputs": [output]}
    if request.id is not None:
        response["id"] = request.id
    if not request.binary_output:
        output["data"] = [base64.b64encode(item).decode("ascii") for item in results]
        output["parameters"] = {"content_type": "base64"}
        return json.dumps(response).encode(), {"content-type": "application/json"}
    tensor = serialize_bytes(results)
    output["parameters"] = {"binary_data_size": len(tensor)}
    header = json.dumps(response).encode()
    return header + tensor, {"content-type": "application/octet-stream",
                             "inference-header-content-length": str(len(header))}


def serialize_bytes(items):
    """A BYTES tensor's binary form: each element as a uint32 little-endian length and its bytes."""
    return b"".join(struct.pack("<I", len(item)) + bytes(item) for item in items)


def deserialize_bytes(data):
    items, pos = [], 0
    while pos < len(data):
        if pos + 4 > len(data):
            raise HTTPError(400, "a BYTES tensor ends inside an element's 4-byte length")
        (length,) = struct.unpack_from("<I", data, pos)
        pos += 4
        if pos + length > len(data):
            raise HTTPError(400, f"a BYTES element claims {length} bytes but only {len(data) - pos} follow")
        items.append(bytes(data[pos:pos + length]))
        pos += length
    return items


def _element_count(shape):
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                              for d in shape):
        raise HTTPError(400, f"input {INPUT!r} needs a shape such as [1], got {shape!r}")
    count = math.prod(shape)
    if not 1 <= count <= MAX_BATCH:
        raise HTTPError(400, f"input {INPUT!r} must hold 1 to {MAX_BATCH} images, got shape {shape}")
    return count


def _flatten(data):
    if isinstance(data, list):
        for item in data:
            yield from _flatten(item)
    else:
        yield data


def _from_base64(item):
    if not isinstance(item, str):
        raise HTTPError(400, f"in JSON, each element of the {DATATYPE} input must be a base64 string "
                             "(or send binary data)")
    try:
        return base64.b64decode(item, validate=True)
    except (binascii.Error, ValueError):
        raise HTTPError(400, f"an element of input {INPUT!r} is not valid base64") from None
