"""The costs around inference, measured for ``bench/run.py`` in their own process.

    python bench/costs.py SPEC.json     # prints one JSON record per line

- ``peak``: this machine's fp32 peak, a large matrix multiply in onnxruntime (the yardstick for
  the achieved GFLOP/s of the networks);
- ``train_step``: seconds per training step (batch 4, the training graph of ``tools/train.py``) at
  each size;
- ``gatys_iteration``: seconds per Gatys iteration (one VGG16 forward + backward and an Adam update
  of the pixels; L-BFGS spends about one such evaluation per iteration) at each size.

SPEC: ``{"peak": bool, "arch": name or null, "train_sizes": [...], "gatys_sizes": [...],
"repeats": int, "threads": int or null}``. The training and Gatys costs need the ImageNet VGG16
weights only for realism; the cost is the same with random weights, which are used (and said)
when the weights are not cached.
"""

import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / 'bench'))

import mxstyle  # noqa: E402,F401  (sets OMP_NUM_THREADS before mxnet loads)
from mxstyle.system import usable_cpus  # noqa: E402
import numpy as np  # noqa: E402

from timing import run_times  # noqa: E402


def measure_peak(threads, n=2048, repeats=7):
    """GFLOP/s of an ``n x n @ n x n`` fp32 matrix multiply in onnxruntime (2 n^3 FLOPs)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    a = helper.make_tensor_value_info('a', TensorProto.FLOAT, [n, n])
    b = helper.make_tensor_value_info('b', TensorProto.FLOAT, [n, n])
    c = helper.make_tensor_value_info('c', TensorProto.FLOAT, [n, n])
    graph = helper.make_graph([helper.make_node('MatMul', ['a', 'b'], ['c'])], 'peak', [a, b], [c])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)])
    model.ir_version = 8
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=['CPUExecutionProvider'])
    rng = np.random.RandomState(0)
    feed = {'a': rng.rand(n, n).astype(np.float32), 'b': rng.rand(n, n).astype(np.float32)}
    times = run_times(lambda: sess.run(None, feed), repeats, warmup=2)
    best = min(times)
    return dict(kind='peak', what=f'onnxruntime fp32 MatMul {n}x{n}x{n}', threads=threads,
                median_s=statistics.median(times), gflops_per_s=2 * n ** 3 / best / 1e9,
                gflops_per_s_median=2 * n ** 3 / statistics.median(times) / 1e9)


def measure_train_step(arch, size, repeats, vgg_weights):
    import mxnet as mx
    from mxstyle.training import train_step
    from train_step import build, random_inputs

    generator, graph, loss, trainer, _ = build(arch, 'hybrid-fast', vgg_weights)
    batches, style = random_inputs(4, size)
    grams = loss.style_targets(mx.nd.array(style))
    photos = [mx.nd.array(b) for b in batches]
    i = [0]

    def step():
        train_step(graph, trainer, photos[i[0] % len(photos)], grams)
        i[0] += 1

    times = run_times(step, repeats)
    return dict(kind='train_step', arch=arch, batch=4, height=size, width=size,
                times_s=[round(t, 3) for t in times], median_s=statistics.median(times))


def measure_gatys(size, repeats, vgg_weights):
    from mxstyle.optimize import stylize_gatys

    rng = np.random.RandomState(0)
    photo = rng.uniform(0, 255, (size, size, 3)).astype(np.float32)
    style = rng.uniform(0, 255, (size, size, 3)).astype(np.float32)
    iters = repeats + 1

    def run(n):
        t0 = time.perf_counter()
        stylize_gatys(photo, style, size=size, iters=n, optimizer='adam', vgg_weights=vgg_weights,
                      progress=False)
        return time.perf_counter() - t0

    run(1)  # warm-up: builds and loads the VGG
    # the difference of two runs removes the setup (loading VGG, style targets) from the per-iteration cost
    one, many = run(1), run(iters)
    return dict(kind='gatys_iteration', height=size, width=size, optimizer='adam',
                median_s=(many - one) / (iters - 1), iterations=iters - 1)


def main(spec_path):
    spec = json.loads(Path(spec_path).read_text())
    threads = spec.get('threads') or usable_cpus()
    if spec.get('peak'):
        print(json.dumps(measure_peak(threads)), flush=True)
    if spec.get('train_sizes') or spec.get('gatys_sizes'):
        from mxstyle import files, weights

        cached = (files.mxstyle_home() / weights.PARAMS_FILE).is_file()
        vgg_weights = 'imagenet' if cached else None
        note = 'ImageNet VGG16' if cached else 'random VGG16 weights (ImageNet not cached; same cost)'
        for size in spec.get('train_sizes') or []:
            rec = measure_train_step(spec['arch'], size, spec['repeats'], vgg_weights)
            print(json.dumps(dict(rec, vgg=note)), flush=True)
        for size in spec.get('gatys_sizes') or []:
            print(json.dumps(dict(measure_gatys(size, spec['repeats'], vgg_weights), vgg=note)), flush=True)


if __name__ == '__main__':
    main(sys.argv[1])
