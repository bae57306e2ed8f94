"""Inference backends: onnxruntime, OpenVINO, MXNet (symbol + params) and OpenCV dnn.

Every backend runs a generator on ``1 x 3 x H x W`` float32 RGB [0, 255] arrays (H and W multiples
of the model's stride) and returns the same layout. Backends that support tiling
(``supports_tiling``) also run the derived graphs that :mod:`mxstyle.runtime.onnx_graphs` and
:mod:`mxstyle.runtime.mxnet_graphs` build: ``run_stats`` (whole-image instance-norm statistics),
``run_fixed`` (the generator with given statistics), ``run_stage`` (one stage of it) and
``run_stage_moments`` (per-tile sums that add up to whole-image statistics).

onnxruntime and OpenVINO share the ONNX-graph machinery (:class:`OnnxGraphBackend`: the graph
analysed once, derived graphs built lazily); each only says how to compile and run one graph.

Thread safety: ``run*`` may be called from many threads at once. onnxruntime sessions are
thread-safe for ``run()``, and OpenVINO graphs keep one infer request per concurrent call; MXNet's cached graphs and OpenCV's ``dnn.Net`` are not, so those calls
are serialized with a lock (use one Stylizer per thread, or processes, for parallel MXNet work).
"""

import functools
import json
import math
import os
import queue
import threading
import warnings

import numpy as np

from . import mxnet_graphs, onnx_graphs
from ..model_folder import ModelError
from .tiling import Stage

__all__ = ['BACKENDS', 'backend_available', 'openvino_has_bf16', 'OnnxGraphBackend', 'OnnxRuntimeBackend',
           'OpenVINOBackend', 'MXNetBackend', 'OpenCVBackend']

BACKENDS = ('onnxruntime', 'openvino', 'mxnet', 'opencv')


def backend_available(name):
    """True if the Python package behind backend ``name`` can be imported."""
    try:
        if name == 'onnxruntime':
            import onnxruntime  # noqa: F401
        elif name == 'openvino':
            import openvino  # noqa: F401
        elif name == 'mxnet':
            import mxnet  # noqa: F401
        elif name == 'opencv':
            import cv2
            return hasattr(cv2, 'dnn')
        else:
            return False
    except ImportError:
        return False
    return True


@functools.lru_cache(maxsize=1)
def openvino_has_bf16():
    """True if OpenVINO's CPU plugin computes in bfloat16 here (AVX512_BF16 or AMX); elsewhere a
    bf16 hint would silently run fp32."""
    try:
        import openvino as ov
    except ImportError:
        return False
    return 'BF16' in ov.Core().get_property('CPU', 'OPTIMIZATION_CAPABILITIES')


class _Backend:
    name = None
    supports_tiling = False
    norms = ()
    receptive_radius = None

    def __init__(self, stride):
        self.stride = int(stride)

    def affine(self, stats, layers=None):
        """Per-norm ``(a, b)`` ([1, C, 1, 1] float32) so that ``norm(x) = x * a + b``."""
        out = []
        for layer, (mean, var) in zip(self.norms if layers is None else layers, stats):
            a = layer.gamma / np.sqrt(np.asarray(var, np.float64) + layer.eps)
            b = layer.beta - np.asarray(mean, np.float64) * a
            out.append((a.astype(np.float32).reshape(1, -1, 1, 1),
                        b.astype(np.float32).reshape(1, -1, 1, 1)))
        return out


# ------------------------------------------------------------------------------ onnxruntime

def _np_to_onnx_type(dtype):
    from onnx import helper

    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


class OnnxGraphBackend(_Backend):
    """An engine that runs ONNX graphs (fp32 or int8), with tiling.

    The graph is analysed once (norm layers, receptive field, cut tensors); the derived graphs
    (statistics, fixed statistics, stages, moments) are built and compiled lazily, once. A
    subclass says how one graph is compiled: ``_session(model_bytes, arena)`` returns an object
    with onnxruntime's ``get_inputs()``, ``get_outputs()`` and ``run(output_names, feed)``.
    """

    #: a cut tensor is kept as a whole-image map only if it holds at most this many values per
    #: input pixel (johnson's residual stream: 128 channels / 4**2 = 8)
    max_cache_floats = 8

    def __init__(self, onnx_bytes, *, stride, threads=None, label='model'):
        super().__init__(stride)
        self._threads = threads
        self._label = label
        self._lock = threading.Lock()
        self._derived = {}
        self.session = self._session(onnx_bytes, arena=True)
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name
        self.tiling_note = None
        try:
            import onnx

            self._proto = onnx.load_from_string(onnx_bytes)
            info = onnx_graphs.receptive_field(self._proto)
            self.receptive_radius = int(math.ceil(info[self.output_name][1]))
            self.norms = onnx_graphs.norm_layers(self._proto)
            self._fixed = onnx_graphs.fixed_model(self._proto)
            self.stages = self._plan_stages(info)
            self.supports_tiling = True
        except Exception as exc:  # an op the analysis does not know: run untiled, say why
            self._proto = None
            self.tiling_note = 'tiling unavailable for this graph (%s); it runs untiled' % exc
            self.supports_tiling = False

    def _session(self, model_bytes, arena=False):
        raise NotImplementedError

    def _derived_session(self, key, build):
        with self._lock:
            if key not in self._derived:
                sess = self._session(build().SerializeToString())
                self._derived[key] = (sess, {i.name for i in sess.get_inputs()})
            return self._derived[key]

    # -- stages

    def _plan_stages(self, info):
        fixed = self._fixed
        position = {}
        for i, node in enumerate(fixed.graph.node):
            for out in node.output:
                position[out] = i
        cuts = [c for c in onnx_graphs.cut_tensors(fixed)
                if c in info and info[c][0] >= 1 and info[c][0] == int(info[c][0])]
        shapes = self._probe(cuts) if cuts else {}
        accepted = []
        for c in cuts:
            shape, dtype = shapes[c]
            jump = int(info[c][0])
            if shape[1] / float(jump * jump) <= self.max_cache_floats:
                accepted.append((c, jump, shape[1], dtype))
        quantized = any(n.op_type == 'QuantizeLinear' for n in self._proto.graph.node)
        self._store = {c: self._store_dtype(dtype, quantized) for c, _, _, dtype in accepted}

        def cost(cut):  # bytes per image pixel of the kept map
            c, jump, channels, _ = cut
            return channels * np.dtype(self._store[c]).itemsize / float(jump * jump)
        # one stage boundary in each gap between two consecutive norms: the last acceptable cut
        # before the next norm (ideally that norm's input itself, whose moments are then free)
        norm_pos = [position[n.output] for n in self.norms]
        boundaries = []
        for k in range(len(self.norms) - 1):
            lo, hi = norm_pos[k], position[self.norms[k + 1].tag + '_scaled']
            in_gap = [cut for cut in accepted if lo <= position[cut[0]] < hi]
            if in_gap:  # the smallest map (an int8 one in a quantized graph), else the latest
                best = min(cost(cut) for cut in in_gap)
                boundaries.append([cut for cut in in_gap if cost(cut) == best][-1])
        stages, start, start_jump, start_pos, start_dtype = [], self.input_name, 1, -1, np.float32
        for c, jump, channels, dtype in boundaries:
            if onnx_graphs.receptive_field(fixed, start=start)[c][1] == 0:
                continue  # a pointwise stage is not worth a stored map: merge it into the next
            inside = [n for n, p in zip(self.norms, norm_pos) if start_pos < p <= position[c]]
            stages.append(self._stage(len(stages), start, start_jump, c, jump, inside,
                                      channels, dtype, start_dtype=start_dtype))
            start, start_jump, start_pos, start_dtype = c, jump, position[c], dtype
        inside = [n for n, p in zip(self.norms, norm_pos) if p > start_pos]
        stages.append(self._stage(len(stages), start, start_jump, self.output_name, 1, inside,
                                  3, np.float32, last=True, start_dtype=start_dtype))
        return stages

    @staticmethod
    def _store_dtype(dtype, quantized):
        """How a whole-image map is kept: float maps as float16 (half the memory; about 70 dB
        from the untiled result), except in a quantized graph, where a rounding can move a value
        into another int8 bin; integer maps as they are."""
        if np.dtype(dtype).kind == 'f':
            return np.dtype(np.float32) if quantized else np.dtype(np.float16)
        return np.dtype(dtype)

    def _probe(self, names):
        """Shapes and dtypes of tensors ``names`` for a small input."""
        from onnx import helper
        import onnx

        m = onnx.ModelProto()
        m.CopyFrom(self._proto)
        m.graph.output.extend([helper.make_empty_tensor_value_info(n) for n in names])
        sess = self._session(m.SerializeToString())
        side = 4 * self.stride
        outs = sess.run(names, {self.input_name: np.zeros((1, 3, side, side), np.float32)})
        return {n: (o.shape, o.dtype) for n, o in zip(names, outs)}

    def _stage(self, index, start, start_jump, end, end_jump, norms, channels, dtype, last=False,
               start_dtype=np.float32):
        rel = onnx_graphs.receptive_field(self._fixed, start=start)
        tensors = [end] + [n.input for n in norms]
        radius = max(rel[t][1] for t in tensors)
        jumps = [j for j, _ in rel.values() if j >= 1]
        align = int(max(jumps + [1]))
        store = self._store.get(end, np.float32)
        stage = Stage(index, start, end, start_jump, end_jump, norms, align, radius,
                      out_channels=channels, store_dtype=store, last=last)
        stage.start_type = None if start == self.input_name else _np_to_onnx_type(start_dtype)
        stage.end_type = _np_to_onnx_type(dtype)
        return stage

    def _stage_session(self, stage, norm=None):
        key = ('stage', stage.index, None if norm is None else norm.index)

        def build():
            return onnx_graphs.stage_model(self._fixed, stage.start, stage.end, moments_of=norm,
                                           start_type=stage.start_type, end_type=stage.end_type)
        return self._derived_session(key, build)

    # -- running

    def run(self, x):
        return self.session.run([self.output_name], {self.input_name: x})[0]

    def _affine_feed(self, stats, names):
        feed = {}
        for layer, st in zip(self.norms, stats):
            if st is None or layer.tag + '_a' not in names:
                continue
            a, b = self.affine([st], [layer])[0]
            feed[layer.tag + '_a'], feed[layer.tag + '_b'] = a, b
        return feed

    def run_stage(self, stage, x, stats):
        sess, names = self._stage_session(stage)
        feed = self._affine_feed(stats, names)
        feed[stage.start] = x
        return sess.run(None, feed)[0]

    def run_stage_moments(self, stage, norm, x, stats, mask):
        sess, names = self._stage_session(stage, norm)
        feed = self._affine_feed(stats, names)
        feed[stage.start] = x
        feed['moment_mask'] = mask
        s1, m2 = sess.run(['moment_s1', 'moment_m2'], feed)
        return s1.astype(np.float64), m2.astype(np.float64)

    def run_stats(self, x):
        sess, _ = self._derived_session('stats', lambda: onnx_graphs.stats_model(self._proto))
        names = [n for layer in self.norms for n in (layer.tag + '_mean', layer.tag + '_var')]
        res = sess.run(names, {self.input_name: x})
        return [(res[2 * i].astype(np.float64).ravel(), res[2 * i + 1].astype(np.float64).ravel())
                for i in range(len(self.norms))]

    def run_fixed(self, x, stats):
        sess, names = self._derived_session('fixed', lambda: self._fixed)
        feed = self._affine_feed(stats, names)
        feed[self.input_name] = x
        return sess.run([self.output_name], feed)[0]


class OnnxRuntimeBackend(OnnxGraphBackend):
    """onnxruntime CPU inference of an ONNX generator (fp32 or int8)."""

    name = 'onnxruntime'

    def __init__(self, onnx_bytes, *, stride, threads=None, label='model'):
        import onnxruntime as ort

        self._ort = ort
        super().__init__(onnx_bytes, stride=stride, threads=threads, label=label)

    def _session(self, model_bytes, arena=False):
        opts = self._ort.SessionOptions()
        opts.log_severity_level = 3
        opts.graph_optimization_level = self._ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.inter_op_num_threads = 1
        # The whole-image session keeps a memory arena: it runs only images up to the tiling
        # budget, so its peak is bounded, and without one every run maps and zeroes its
        # activations afresh (measured: johnson_s8 at 1024 x 1024 0.50 s without, 0.14 s with,
        # +130 MB). The tiling sessions (one per stage and norm) go without, so that they do not
        # each keep their peak.
        opts.enable_cpu_mem_arena = arena
        opts.enable_mem_pattern = arena
        if self._threads:
            opts.intra_op_num_threads = int(self._threads)
        try:
            return self._ort.InferenceSession(model_bytes, sess_options=opts,
                                              providers=['CPUExecutionProvider'])
        except Exception as exc:
            raise ModelError(f'{self._label}: onnxruntime cannot load this model ({exc}); '
                             're-export it') from None


# --------------------------------------------------------------------------------- OpenVINO

class _Named:
    def __init__(self, name):
        self.name = name


class _OpenVINOGraph:
    """One compiled OpenVINO graph behind onnxruntime's session interface. An infer request
    serves one call at a time: concurrent calls each take one from a pool that grows to the
    number of threads calling at once."""

    def __init__(self, compiled):
        self._compiled = compiled
        self._inputs = [_Named(i.get_any_name()) for i in compiled.inputs]
        self._outputs = [_Named(o.get_any_name()) for o in compiled.outputs]
        self._requests = queue.SimpleQueue()

    def get_inputs(self):
        return self._inputs

    def get_outputs(self):
        return self._outputs

    def run(self, output_names, feed):
        try:
            request = self._requests.get_nowait()
        except queue.Empty:
            request = self._compiled.create_infer_request()
        try:
            request.infer({name: np.ascontiguousarray(value) for name, value in feed.items()})
            names = [o.name for o in self._outputs] if output_names is None else output_names
            # copies: the request's output buffers are reused by its next call
            return [np.array(request.get_tensor(name).data) for name in names]
        finally:
            self._requests.put(request)


class OpenVINOBackend(OnnxGraphBackend):
    """OpenVINO CPU inference of the fp32 ONNX generator, computing in fp32 or bf16.

    ``precision='bf16'`` asks the CPU plugin for bfloat16 arithmetic (weights and activations;
    accumulation stays fp32). It is exact only to about 3 significant digits, so the runtime uses
    it only for models whose card records that it passed the exporter's fidelity gate, and only
    on CPUs that compute bf16 natively (:func:`openvino_has_bf16`). OpenVINO cannot read the
    QOperator int8 ONNX files.
    """

    name = 'openvino'

    def __init__(self, onnx_bytes, *, stride, threads=None, label='model', precision='fp32'):
        import openvino as ov

        if precision not in ('fp32', 'bf16'):
            raise ValueError(f'OpenVINO runs fp32 or bf16, not {precision}')
        self._ov = ov
        self._core = ov.Core()
        self.precision = precision
        super().__init__(onnx_bytes, stride=stride, threads=threads, label=label)

    def _session(self, model_bytes, arena=False):
        config = {'INFERENCE_PRECISION_HINT': 'bf16' if self.precision == 'bf16' else 'f32',
                  'PERFORMANCE_HINT': 'LATENCY'}
        if self._threads:
            config['INFERENCE_NUM_THREADS'] = int(self._threads)
        try:
            model = self._core.read_model(model_bytes)
            return _OpenVINOGraph(self._core.compile_model(model, 'CPU', config))
        except Exception as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f'{self._label}: OpenVINO cannot load this model ({msg}); use '
                             'backend="onnxruntime"') from None


# ------------------------------------------------------------------------------------ OpenCV

class OpenCVBackend(_Backend):
    """OpenCV ``dnn`` inference of the fp32 ONNX graph (untiled; calls are serialized)."""

    name = 'opencv'

    def __init__(self, onnx_bytes, *, stride, threads=None, label='model'):
        super().__init__(stride)
        import cv2

        if threads:
            cv2.setNumThreads(int(threads))  # process-wide in OpenCV
        try:
            self.net = cv2.dnn.readNetFromONNX(np.frombuffer(onnx_bytes, np.uint8))
        except cv2.error as exc:
            msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else exc
            raise ModelError(f'{label}: OpenCV dnn cannot load this model ({msg}); use '
                             'backend="onnxruntime" or "mxnet"') from None
        self.net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        self.net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
        self._lock = threading.Lock()
        self.tiling_note = 'the OpenCV backend runs untiled'

    def run(self, x):
        with self._lock:
            self.net.setInput(np.ascontiguousarray(x, np.float32))
            out = self.net.forward()
        return np.array(out, dtype=np.float32, copy=True)


# ------------------------------------------------------------------------------------- MXNet

class MXNetBackend(_Backend):
    """MXNet inference of an exported symbol + params pair (fp32 or int8), on the CPU.

    MXNet's cached graphs are not thread-safe: every call holds a lock. MXNet's thread count is
    process-wide (``OMP_NUM_THREADS``, read when mxnet is first imported), so ``threads`` cannot
    be set per model here. Tiling runs the whole fixed-statistics graph as a single stage (the
    moments of norm k cost the network up to layer k: exact, but about 6 passes for ``johnson``).
    """

    name = 'mxnet'

    def __init__(self, symbol_text, params_bytes, *, stride, threads=None, label='model'):
        super().__init__(stride)
        import mxnet as mx

        self._mx = mx
        self._label = label
        self._lock = threading.Lock()
        if threads and str(threads) != os.environ.get('OMP_NUM_THREADS'):
            warnings.warn('the MXNet backend ignores threads=%s: its thread pool is process-wide '
                          '(set OMP_NUM_THREADS before importing mxstyle); it uses %s'
                          % (threads, os.environ.get('OMP_NUM_THREADS', 'the default')), stacklevel=3)
        try:
            self._graph = json.loads(symbol_text)
            self._sym = mx.sym.load_json(symbol_text)
            loaded = mx.nd.load_frombuffer(params_bytes)
        except Exception as exc:
            raise ModelError(f'{label}: MXNet cannot load this symbol/params pair ({exc}); '
                             're-export the model') from None
        self._params = {k.split(':', 1)[1] if ':' in k else k: v for k, v in loaded.items()}
        inputs = self._sym.list_inputs()
        self.input_name = 'data' if 'data' in inputs else inputs[0]
        self._blocks = {}
        self._block('plain')  # fail early if the graph cannot be built
        self.tiling_note = None
        try:
            info = mxnet_graphs.receptive_field(self._graph, self.input_name)
            self.receptive_radius = int(math.ceil(info[self._graph['heads'][0][0]][1]))
            self.norms = mxnet_graphs.norm_layers(self._graph, self._params, self.input_name)
            self.stages = [Stage(0, self.input_name, 'output', 1, 1, self.norms, self.stride,
                                 self.receptive_radius, last=True)]
            self.supports_tiling = True
        except Exception as exc:
            self.tiling_note = 'tiling unavailable for this graph (%s); it runs untiled' % exc
            self.supports_tiling = False

    def _fixed_symbol(self):
        if 'fixed_sym' not in self._blocks:  # the fixed and moments blocks share it
            self._blocks['fixed_sym'] = mxnet_graphs.fixed_symbol(self._graph, self.norms)
        return self._blocks['fixed_sym']

    def _block(self, kind):
        with self._lock:
            if kind in self._blocks:
                return self._blocks[kind]
            mx = self._mx
            if kind == 'plain':
                sym = self._sym
            elif kind == 'stats':
                sym = mxnet_graphs.stats_symbol(self._sym, self._graph, self.norms)
            elif kind == 'fixed':
                sym = self._fixed_symbol()
            else:
                sym = mxnet_graphs.moments_symbol(self._fixed_symbol(), self._graph,
                                                  self.norms[kind[1]])
            inputs = [n for n in sym.list_inputs() if n == self.input_name or n == 'moment_mask'
                      or (n.startswith('norm') and n.endswith(('_a', '_b')))]
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                block = mx.gluon.SymbolBlock(sym, [mx.sym.var(n) for n in inputs])
            for name, param in block.collect_params().items():
                if name not in self._params:
                    raise ModelError(f'{self._label}: parameter {name} is missing from the params '
                                     'file; re-export the model')
                param._load_init(self._params[name], mx.cpu())
            block.hybridize(static_alloc=False)
            self._blocks[kind] = (block, inputs)
            return self._blocks[kind]

    def _call(self, kind, feed):
        mx = self._mx
        block, inputs = self._block(kind)
        with self._lock:
            out = block(*[mx.nd.array(feed[n], dtype=np.float32) for n in inputs])
            if not isinstance(out, (list, tuple)):
                out = [out]
            return [o.asnumpy() for o in out]

    def _feed(self, x, stats):
        feed = {self.input_name: x}
        for norm, st in zip(self.norms, stats):
            if st is not None:
                feed[norm.tag + '_a'], feed[norm.tag + '_b'] = self.affine([st], [norm])[0]
        return feed

    def run(self, x):
        return self._call('plain', {self.input_name: x})[0]

    def run_stats(self, x):
        res = self._call('stats', {self.input_name: x})[1:]
        return [(res[2 * i].astype(np.float64).ravel(), res[2 * i + 1].astype(np.float64).ravel())
                for i in range(len(self.norms))]

    def run_fixed(self, x, stats):
        return self._call('fixed', self._feed(x, stats))[0]

    def run_stage(self, stage, x, stats):
        return self.run_fixed(x, stats)

    def run_stage_moments(self, stage, norm, x, stats, mask):
        feed = self._feed(x, stats)
        feed['moment_mask'] = mask
        s1, m2 = self._call(('moments', norm.index), feed)
        return s1.astype(np.float64), m2.astype(np.float64)
