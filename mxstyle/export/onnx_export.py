"""MXNet symbol + params -> ONNX (opset 13, dynamic batch / height / width), and its checks.

What ``mx.onnx.export_model`` leaves to fix (docs/design.md, ONNX export pitfalls):

- it declares the newest opset the installed onnx knows (23 with onnx 1.18), although its
  translations are written for opset 12/13: we call its converter with ``opset_version=13``
  and declare opset 13 (IR version 7), so older runtimes (OpenCV's dnn) read the file;
- it lists every weight as a graph input as well as an initializer: onnxruntime then treats them
  as overridable inputs and skips constant folding, so they are removed from the inputs;
- nodes have empty names (onnxruntime's quantizer cannot then exclude a node by name), the
  dynamic dimensions have no names and the output is named after an internal MXNet node: nodes
  are named after their first output, dimensions ``batch``/``height``/``width``, the output
  :data:`OUTPUT_NAME`;
- it imports ``onnx.mapping``, deprecated in onnx 1.18 (a DeprecationWarning per call): silenced here.
"""
import contextlib
import os
import warnings

import numpy as np

from ..system import usable_cpus

__all__ = ["OPSET", "INPUT_NAME", "OUTPUT_NAME", "mxnet_to_onnx", "ort_session", "run_onnx"]

OPSET = 13
INPUT_NAME = "data"
OUTPUT_NAME = "stylized"


@contextlib.contextmanager
def quiet_onnx_deprecations():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*onnx.mapping.*")
        yield


def mxnet_to_onnx(prefix, onnx_path, *, sample_shape=(1, 3, 64, 64), metadata=None):
    """Convert ``prefix-symbol.json`` + ``prefix-0000.params`` into ``onnx_path``; returns the ModelProto.

    The input is ``data`` (N x 3 x H x W float32, any N, H, W), the output ``stylized``. The
    model passes ``onnx.checker`` (full check, with shape inference) before it is written.
    """
    import mxnet as mx
    import onnx
    from onnx import TensorProto, helper

    with quiet_onnx_deprecations():
        from mxnet.onnx.mx2onnx._export_onnx import MXNetGraph

        sym, arg_params, aux_params = mx.model.load_checkpoint(prefix, 0)
        params = dict(arg_params)
        params.update(aux_params)
        graph = MXNetGraph().create_onnx_graph_proto(
            sym, params, in_shapes=[tuple(sample_shape)], in_types=[TensorProto.FLOAT],
            opset_version=OPSET, dynamic=True, dynamic_input_shapes=[(None, 3, None, None)])
    model = helper.make_model(graph, producer_name="mxstyle",
                              opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 7  # the IR version that goes with opset 13
    _tidy(model)
    if metadata:
        helper.set_model_props(model, {str(k): str(v) for k, v in metadata.items()})
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, os.fspath(onnx_path))
    return model


def _tidy(model):
    graph = model.graph
    weights = {init.name for init in graph.initializer}
    inputs = [i for i in graph.input if i.name not in weights]
    del graph.input[:]
    graph.input.extend(inputs)
    if len(graph.input) != 1 or len(graph.output) != 1:
        raise ValueError(f"expected one input and one output, got {len(graph.input)} and {len(graph.output)}")
    old_in, old_out = graph.input[0].name, graph.output[0].name
    for node in graph.node:
        node.input[:] = [INPUT_NAME if n == old_in else OUTPUT_NAME if n == old_out else n for n in node.input]
        node.output[:] = [OUTPUT_NAME if n == old_out else n for n in node.output]
    graph.input[0].name, graph.output[0].name = INPUT_NAME, OUTPUT_NAME
    seen = set()
    for i, node in enumerate(graph.node):
        if not node.name or node.name in seen:
            node.name = node.output[0] if node.output and node.output[0] not in seen else f"{node.op_type}_{i}"
        seen.add(node.name)
    for value in (graph.input[0], graph.output[0]):
        dims = value.type.tensor_type.shape.dim
        while len(dims) < 4:
            dims.add()
        for dim, label in zip(dims, ("batch", None, "height", "width")):
            if label is None:
                dim.dim_value = 3
            else:
                dim.dim_param = label


def ort_session(model, threads=None):
    """An onnxruntime CPU session for a path or serialized model, quiet, ``threads`` intra-op threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = int(threads or usable_cpus())
    return ort.InferenceSession(os.fspath(model) if not isinstance(model, bytes) else model, options,
                                providers=["CPUExecutionProvider"])


def run_onnx(session, x):
    """Run a session on an NCHW float32 array; returns the first output."""
    name = session.get_inputs()[0].name
    return session.run(None, {name: np.ascontiguousarray(x, dtype=np.float32)})[0]
