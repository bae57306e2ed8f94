"""Triton Inference Server model repositories from model folders, for users who outgrow one machine:
the same ONNX file mxstyle runs, served by Triton's onnxruntime backend (or KServe's Triton runtime).

    write_triton_model("langlois", "triton_repo")  ->  triton_repo/langlois/config.pbtxt
                                                      triton_repo/langlois/1/model.onnx
                                                      triton_repo/langlois/mxstyle.json

The model takes and returns the network's tensor, not image files: ``data`` and ``stylized``,
FP32 NCHW RGB in [0, 255], height and width multiples of the card's stride (``mxstyle.json`` says
which; pad with reflection and crop back, as ``Stylizer`` does). ``max_batch_size: 0`` (the
default) lists the batch in ``dims`` (``[-1, 3, -1, -1]``): photos come in any size, and Triton's
dynamic batcher can only stack requests of equal shape. With ``max_batch_size > 0`` the dims
leave the batch out (``[3, -1, -1]``) and a ``dynamic_batching`` block batches equal-sized requests.
Imports onnx only when writing; :func:`parse_config` needs ``tritonclient[grpc]``.
"""
import json
import re
from pathlib import Path

from . import model_folder as cards
from .errors import ConfigError
from .files import write_bytes_atomic, write_text_atomic
from .values import is_integer

__all__ = ["PLATFORM", "write_triton_model", "render_config", "parse_config"]

PLATFORM = "onnxruntime_onnx"
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_ONNX_FLOAT = 1  # onnx.TensorProto.FLOAT


def write_triton_model(model, repo, *, precision="auto", name=None, threads=0, instances=1, max_batch_size=0):
    """Write ``repo/NAME/`` for ``model`` (a name or a model folder); returns that folder.

    ``precision``: ``auto`` takes the int8 ONNX file when the model has one (it passed the
    exporter's fidelity gate), else fp32. ``threads``: onnxruntime intra-op threads per instance
    (0: onnxruntime's choice, one per core); ``instances``: CPU instances of the model.
    """
    for label, value, low in (("threads", threads, 0), ("instances", instances, 1),
                              ("max_batch_size", max_batch_size, 0)):
        if not is_integer(value) or value < low:
            raise ConfigError(f"{label} must be an integer of at least {low}, got {value!r}")
    if precision not in ("auto", "fp32", "int8"):
        raise ConfigError(f"unknown precision {precision!r}; choose auto, fp32 or int8")
    folder = cards.resolve_model_dir(model)
    card = cards.load_card(folder)
    name = name or card.get("name") or folder.name
    if not _NAME.match(name):
        raise ConfigError(f"Triton model name {name!r} may hold only letters, digits, '_', '.' and '-'")
    role = {"fp32": "onnx_fp32", "int8": "onnx_int8"}.get(precision) or (
        "onnx_int8" if isinstance(card["files"].get("onnx_int8"), dict) else "onnx_fp32")
    data = cards.load_verified(folder, card, role)
    tensors = _signature(data, f"{folder} ({role})")
    text = render_config(name, tensors, threads=threads, instances=instances, max_batch_size=max_batch_size,
                         comment=f"written by mxstyle triton from {folder.name} ({role}); see mxstyle.json")
    target = Path(repo) / name
    write_bytes_atomic(target / "1" / "model.onnx", data)
    write_text_atomic(target / "config.pbtxt", text)
    record = card["files"][role]
    write_text_atomic(target / "mxstyle.json", json.dumps({
        "model": card.get("name"), "arch": card.get("arch"), "role": role, "sha256": record["sha256"],
        "stride": card["stride"], "input": tensors["input"], "output": tensors["output"],
        "tensor": "float32 NCHW RGB in [0, 255]; height and width multiples of stride (reflect-pad, crop back)",
        "style": card.get("style")}, indent=1) + "\n")
    return target


def _signature(onnx_bytes, label):
    """The input and output names of a generator's ONNX graph, checked to be 4-d float NCHW."""
    import onnx

    graph = onnx.load_from_string(onnx_bytes).graph
    initializers = {t.name for t in graph.initializer}
    inputs = [v for v in graph.input if v.name not in initializers]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise ConfigError(f"{label}: expected one input and one output, found {len(inputs)} and {len(graph.output)}")
    for value in (inputs[0], graph.output[0]):
        tensor = value.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim]
        if tensor.elem_type != _ONNX_FLOAT or len(dims) != 4 or dims[1] != 3:
            raise ConfigError(f"{label}: {value.name} is not a float N x 3 x H x W tensor (dims {dims})")
    return {"input": inputs[0].name, "output": graph.output[0].name}


def render_config(name, tensors, *, threads=0, instances=1, max_batch_size=0, comment=None):
    """The ``config.pbtxt`` text (protobuf text format of Triton's ``ModelConfig``)."""
    dims = "[ 3, -1, -1 ]" if max_batch_size else "[ -1, 3, -1, -1 ]"
    lines = [f"# {comment}"] if comment else []
    lines += [f'name: "{name}"', f'platform: "{PLATFORM}"', f"max_batch_size: {max_batch_size}"]
    for key, tensor in (("input", tensors["input"]), ("output", tensors["output"])):
        lines += [f"{key} [", "  {", f'    name: "{tensor}"', "    data_type: TYPE_FP32", f"    dims: {dims}",
                  "  }", "]"]
    lines += ["instance_group [", "  {", "    kind: KIND_CPU", f"    count: {instances}", "  }", "]"]
    if max_batch_size:
        lines += ["dynamic_batching { }"]
    # onnxruntime backend options: the graph is one chain, so one inter-op thread, and the memory
    # arena on, as mxstyle's own whole-image session runs it
    for key, value in (("intra_op_thread_count", threads), ("inter_op_thread_count", 1), ("execution_mode", 0),
                       ("enable_mem_arena", 1)):
        lines.append(f'parameters {{ key: "{key}" value: {{ string_value: "{value}" }} }}')
    return "\n".join(lines) + "\n"


def parse_config(text):
    """Parse ``config.pbtxt`` text against Triton's ``model_config.proto`` (as compiled into
    ``tritonclient.grpc.model_config_pb2``); returns the ``ModelConfig`` message. A field or value
    the schema does not have raises :class:`ConfigError`."""
    try:
        from google.protobuf import text_format
        from tritonclient.grpc import model_config_pb2
    except ImportError as exc:
        raise ConfigError(f"checking a Triton config needs tritonclient[grpc] ({exc}): "
                          'pip install "tritonclient[grpc]"') from None
    try:
        return text_format.Parse(text, model_config_pb2.ModelConfig())
    except text_format.ParseError as exc:
        raise ConfigError(f"not a valid Triton model configuration: {exc}") from None
