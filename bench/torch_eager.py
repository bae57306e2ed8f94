"""The same network with the same weights in PyTorch eager mode, for side-by-side timings.

The exported ONNX file (``NAME.onnx``, fp32) is read once and turned into a list of
``torch.nn.functional`` calls on torch tensors; running it is plain PyTorch eager execution
(``torch.no_grad``), node by node, exactly what a hand-written ``nn.Module`` of the network does.
Reading the graph instead of porting each architecture by hand keeps one source of truth for the
weights and covers every generator in the registry. Only the operators our exporter writes are
supported; any other raises ``NotImplementedError`` naming it.
"""

import numpy as np

__all__ = ['torch_available', 'TorchEagerNet']


def torch_available():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _attrs(node):
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


class TorchEagerNet:
    """``TorchEagerNet(onnx_bytes_or_path, threads=None)(x)``: NCHW float32 numpy in, numpy out."""

    def __init__(self, model, threads=None):
        import onnx
        import torch
        from onnx import numpy_helper

        self.torch = torch
        if threads:
            torch.set_num_threads(int(threads))
        proto = onnx.load_from_string(model) if isinstance(model, bytes) else onnx.load(str(model))
        graph = proto.graph
        self.consts = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in graph.initializer}
        for node in graph.node:
            if node.op_type == 'Constant':
                self.consts[node.output[0]] = torch.from_numpy(
                    numpy_helper.to_array(_attrs(node)['value']).copy())
        inits = set(self.consts)
        self.input = next(i.name for i in graph.input if i.name not in inits)
        self.output = graph.output[0].name
        self.nodes = [(n.op_type, list(n.input), list(n.output), _attrs(n))
                      for n in graph.node if n.op_type != 'Constant']
        # after node i, drop the tensors no later node reads (peak memory of a hand-written module)
        last = {}
        for i, (_, inputs, _, _) in enumerate(self.nodes):
            for name in inputs:
                last[name] = i
        self.drop = [[] for _ in self.nodes]
        for name, i in last.items():
            if name not in self.consts and name != self.output:
                self.drop[i].append(name)
        for op, *_ in self.nodes:
            if not hasattr(self, '_op_' + op):
                raise NotImplementedError(f'torch_eager: ONNX operator {op} is not supported')

    def __call__(self, x):
        torch = self.torch
        env = dict(self.consts)
        env[self.input] = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        with torch.no_grad():
            for i, (op, inputs, outputs, attrs) in enumerate(self.nodes):
                args = [env[name] if name else None for name in inputs]
                env[outputs[0]] = getattr(self, '_op_' + op)(args, attrs)
                del args
                for name in self.drop[i]:
                    env.pop(name, None)
            return env[self.output].numpy()

    # ------------------------------------------------------------------ operators
    def _op_Conv(self, a, at):
        F = self.torch.nn.functional
        pads = at.get('pads', [0, 0, 0, 0])
        if pads[:2] != pads[2:]:
            raise NotImplementedError('torch_eager: asymmetric Conv padding')
        return F.conv2d(a[0], a[1], a[2] if len(a) > 2 else None, stride=tuple(at.get('strides', [1, 1])),
                        padding=tuple(pads[:2]), dilation=tuple(at.get('dilations', [1, 1])),
                        groups=at.get('group', 1))

    def _op_InstanceNormalization(self, a, at):
        return self.torch.nn.functional.instance_norm(a[0], weight=a[1], bias=a[2],
                                                      eps=at.get('epsilon', 1e-5))

    def _op_Pad(self, a, at):
        mode = at.get('mode', b'constant')
        mode = mode.decode() if isinstance(mode, bytes) else mode
        pads = [int(p) for p in (a[1].tolist() if len(a) > 1 and a[1] is not None else at['pads'])]
        n = len(pads) // 2
        if any(pads[:2]) or any(pads[n:n + 2]):
            raise NotImplementedError('torch_eager: Pad over batch or channel axes')
        # ONNX: (b1, b2, b3, b4, e1, e2, e3, e4); torch: last axis first, (begin, end) pairs
        torch_pads = []
        for axis in reversed(range(2, n)):
            torch_pads += [pads[axis], pads[axis + n]]
        value = float(a[2]) if len(a) > 2 and a[2] is not None else 0.0
        kwargs = dict(value=value) if mode == 'constant' else {}
        return self.torch.nn.functional.pad(a[0], torch_pads, mode=mode, **kwargs)

    def _op_Resize(self, a, at):
        mode = at.get('mode', b'nearest')
        mode = mode.decode() if isinstance(mode, bytes) else mode
        if mode != 'nearest':
            raise NotImplementedError(f'torch_eager: Resize mode {mode}')
        scales = a[2] if len(a) > 2 and a[2] is not None and a[2].numel() else None
        if scales is not None:
            return self.torch.nn.functional.interpolate(a[0], scale_factor=tuple(float(s) for s in scales[2:]),
                                                        mode='nearest')
        size = [int(s) for s in a[3].tolist()[2:]]
        return self.torch.nn.functional.interpolate(a[0], size=size, mode='nearest')

    def _op_Upsample(self, a, at):
        return self._op_Resize([a[0], None, a[1]], at)

    def _op_Relu(self, a, at):
        return self.torch.relu(a[0])

    def _op_LeakyRelu(self, a, at):
        return self.torch.nn.functional.leaky_relu(a[0], at.get('alpha', 0.01))

    def _op_Tanh(self, a, at):
        return self.torch.tanh(a[0])

    def _op_Sigmoid(self, a, at):
        return self.torch.sigmoid(a[0])

    def _op_Add(self, a, at):
        return a[0] + a[1]

    def _op_Sub(self, a, at):
        return a[0] - a[1]

    def _op_Mul(self, a, at):
        return a[0] * a[1]

    def _op_Div(self, a, at):
        return a[0] / a[1]

    def _op_Concat(self, a, at):
        return self.torch.cat(a, dim=at.get('axis', 1))

    def _op_AveragePool(self, a, at):
        k, s = at['kernel_shape'], at.get('strides', at['kernel_shape'])
        pads = at.get('pads', [0, 0, 0, 0])
        return self.torch.nn.functional.avg_pool2d(a[0], tuple(k), tuple(s), padding=tuple(pads[:2]),
                                                   count_include_pad=bool(at.get('count_include_pad', 0)))

    def _op_Identity(self, a, at):
        return a[0]
