#!/usr/bin/env python
"""Seconds per training step: generator + VGG16 perceptual loss, forward, backward and Adam update.

One step is :func:`mxstyle.training.train_step`, the function the training loop calls per batch
(the graph under ``autograd.record()``, ``backward()``, the loss terms read back and checked,
``trainer.step()``, ``waitall()``), on what :func:`mxstyle.training.build_training` builds for the
default :class:`~mxstyle.training.TrainOptions`. Every variant is timed in the same run, on the
same machine, with the same inputs:

``imperative``       the graph not hybridized, MXNet's own InstanceNorm/Conv2D (the reference)
``imperative-fast``  the graph not hybridized, the generator in its training formulation
``hybrid``           hybridized (static_alloc, static_shape), MXNet's own InstanceNorm/Conv2D
``hybrid-fast``      hybridized, training formulation, VGG in float32: ``mxstyle train --precision float32``
``hybrid-fast-bf16`` the same with the VGG loss network in bfloat16: ``mxstyle train`` where the CPU
                     has AVX512_BF16 or AMX (``--precision auto``); elsewhere emulated, slow

(the training formulation: :func:`mxstyle.models.layers.training_formulation`). The ImageNet VGG16
weights are used when cached, random ones otherwise (the speed is the same; the header says which).
The header also gives the load other processes put on the machine while each variant ran, because a
shared machine makes every timing slower.

``--quality`` instead compares the variants on real photos and a real painting (needs the weights):
loss values and gradient cosine at the first step, then a few Adam steps in lockstep, next to the
same comparison for the reference run with one float32 ulp of noise on its photos (the size of a
mere rounding difference). ``--breakdown`` times the parts of the ``hybrid-fast`` step (generator,
loss network, Adam) and lists where the operators spend it.

Examples::

    python bench/train_step.py                                   # johnson and johnson_lite, 4 x 256 x 256
    python bench/train_step.py --archs johnson --repeats 10 --json step.json
    python bench/train_step.py --quality --archs johnson
    python bench/train_step.py --breakdown --archs johnson
"""
import argparse
import gc
import json
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import mxstyle  # noqa: E402,F401  (sets OMP_NUM_THREADS before mxnet loads)
from mxstyle.system import usable_cpus  # noqa: E402
import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402
from mxnet import autograd, gluon  # noqa: E402

from mxstyle import files, io, weights  # noqa: E402
from mxstyle.training import TrainOptions, build_training, train_step  # noqa: E402
from machine import ISA_FLAGS, cpuinfo  # noqa: E402
from timing import run_times  # noqa: E402

VARIANTS = ("imperative", "imperative-fast", "hybrid", "hybrid-fast", "hybrid-fast-bf16")
DEFAULT_VARIANTS = ("imperative", "hybrid", "hybrid-fast")
DEFAULT_STYLE = ROOT / "models" / "langlois" / "style.jpg"  # a shipped painting
COMPARED = ("loss", "content", "style", "tv")  # the loss terms --quality compares


# --- the machine ---------------------------------------------------------------------------

def machine_info():
    model, flags = cpuinfo()
    isa = [f for f in ISA_FLAGS if f in flags]
    cores = usable_cpus()
    return dict(cpu=model, cores=cores, isa=isa, omp_threads=os.environ.get("OMP_NUM_THREADS", "unset"),
                mxnet=mx.__version__, python=platform.python_version(), kernel=platform.release(),
                loadavg_start=os.getloadavg()[0])


class OtherLoad:
    """Cores kept busy by *other* processes between start() and stop() (from /proc/stat)."""

    def __init__(self):
        self.hz = os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _busy():
        try:
            fields = [int(v) for v in open("/proc/stat").readline().split()[1:]]
        except OSError:
            return None
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return sum(fields[:8]) - idle

    @staticmethod
    def _own():
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    def start(self):
        self._t, self._b, self._o = time.perf_counter(), self._busy(), self._own()

    def stop(self):
        elapsed = time.perf_counter() - self._t
        busy = self._busy()
        if busy is None or self._b is None:
            return None
        others = (busy - self._b) / self.hz - (self._own() - self._o)
        return max(0.0, others / elapsed)


# --- inputs ---------------------------------------------------------------------------------

def vgg_weights_choice():
    path = files.mxstyle_home() / weights.PARAMS_FILE
    return ("imagenet", "ImageNet (cached)") if path.is_file() else (None, "random (ImageNet not cached)")


def real_inputs(batch_size, image_size, photos_dir, style_path, seed=0):
    """A batch of real photo crops and a real painting, or None when the data is missing."""
    from mxstyle.data import PhotoDataset

    if not (photos_dir and Path(photos_dir).is_dir() and style_path and Path(style_path).is_file()):
        return None
    dataset = PhotoDataset(photos_dir, image_size=image_size, seed=seed)
    batches = [dataset.load_batch(step, batch_size)[0] for step in range(8)]
    style = io.resize_max_side(io.read_image(style_path), 512)
    return batches, io.to_tensor(style)


def random_inputs(batch_size, image_size, seed=0):
    rng = np.random.RandomState(seed)
    batches = [rng.uniform(0, 255, (batch_size, 3, image_size, image_size)).astype(np.float32)
               for _ in range(2)]
    return batches, rng.uniform(0, 255, (1, 3, image_size, image_size)).astype(np.float32)


# --- one variant ------------------------------------------------------------------------------

def build(arch, variant, vgg_weights, seed=0):
    """(generator, graph, loss, trainer, ctx) for ``variant``: ``mxstyle train``'s defaults for
    ``arch`` (the generator initialized from ``seed``), VGG16 weights ``vgg_weights`` (None: random)."""
    precision = "bfloat16" if variant.endswith("-bf16") else "float32"
    options = TrainOptions(style="", data="", out="", arch=arch, seed=seed, vgg_weights=vgg_weights,
                           precision=precision)
    setup = build_training(options, fast_layers="-fast" in variant)
    if variant.startswith("imperative"):
        setup.graph.hybridize(active=False)
    return setup


def time_arch(arch, variants, args, inputs, vgg_weights):
    """Time every variant of ``arch``, one after the other (each alone in memory, as in training),
    or with ``--interleave`` all built first and measured in rounds (one step of each per round)."""
    batches, style = inputs
    photos = [mx.nd.array(b) for b in batches]
    state = {}

    def setup(variant):
        generator, graph, loss, trainer, _ = build(arch, variant, vgg_weights)
        grams = loss.style_targets(mx.nd.array(style))
        for i in range(args.warmup):
            train_step(graph, trainer, photos[i % len(photos)], grams)
        state[variant] = dict(graph=graph, trainer=trainer, grams=grams, times=[], cpu=[], load=OtherLoad(),
                              busy=0.0, elapsed=0.0)

    def measure(variant, i):
        st = state[variant]
        st["load"].start()
        r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        train_step(st["graph"], st["trainer"], photos[i % len(photos)], st["grams"])
        elapsed = time.perf_counter() - t0
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        other = st["load"].stop()
        st["times"].append(elapsed)
        st["cpu"].append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
        if other is not None:
            st["busy"] += other * elapsed
            st["elapsed"] += elapsed

    def release(variant):
        st = state[variant]
        st.pop("graph"), st.pop("trainer"), st.pop("grams")
        gc.collect()
        mx.nd.waitall()

    if not args.interleave:
        for variant in variants:
            setup(variant)
            for i in range(args.repeats):
                measure(variant, i)
            release(variant)
    else:
        for variant in variants:
            setup(variant)
        for i in range(args.repeats):
            for variant in variants:
                measure(variant, i)
        for variant in variants:
            release(variant)
    results = []
    for variant in variants:
        st = state[variant]
        other = round(st["busy"] / st["elapsed"], 2) if st["elapsed"] else None
        results.append(dict(arch=arch, variant=variant, times=[round(t, 4) for t in st["times"]],
                            median=statistics.median(st["times"]), min=min(st["times"]),
                            cpu_per_step=statistics.median(st["cpu"]), other_load=other))
    return results


def run_timing(args):
    info = machine_info()
    vgg_weights, vgg_note = vgg_weights_choice()
    info["vgg_weights"] = vgg_note
    inputs = real_inputs(args.batch_size, args.image_size, args.photos, args.style)
    info["inputs"] = "real photos" if inputs else "random images"
    inputs = inputs or random_inputs(args.batch_size, args.image_size)
    variants = args.variants
    print(header(info, args), flush=True)
    results = []
    for arch in args.archs:
        for res in time_arch(arch, variants, args, inputs, vgg_weights):
            results.append(res)
            print(f"  {arch:13s} {res['variant']:16s} median {res['median']:.3f} s   "
                  f"min {res['min']:.3f} s   others {res['other_load']} cores", flush=True)
    info["loadavg_end"] = os.getloadavg()[0]
    print()
    print(table(results))
    print(f"\nload average: {info['loadavg_start']:.2f} at the start, {info['loadavg_end']:.2f} at the end")
    if args.json:
        Path(args.json).write_text(json.dumps(dict(machine=info, options=vars(args), results=results), indent=1))
        print(f"wrote {args.json}")
    return results


def _loss_summary():
    """The default training loss, as the header names it."""
    config = TrainOptions(style="", data="", out="").loss_config()
    return (f"VGG16 to {config.vgg_layers[-1]} (content {'/'.join(config.content_layers)}, "
            f"style {'/'.join(config.style_layers)})")


def header(info, args):
    return "\n".join([
        f"training step, batch {args.batch_size} x {args.image_size} x {args.image_size}, Adam, "
        f"{_loss_summary()}",
        f"cpu: {info['cpu']}, {info['cores']} cores, ISA: {' '.join(info['isa']) or '?'}",
        f"OMP_NUM_THREADS={info['omp_threads']}, mxnet {info['mxnet']}, python {info['python']}, "
        f"linux {info['kernel']}",
        f"VGG weights: {info['vgg_weights']}; inputs: {info['inputs']}; warmup {args.warmup}, "
        f"repeats {args.repeats}" + (" (variants interleaved)" if getattr(args, "interleave", False) else ""),
    ])


def table(results):
    rows = ["| arch | variant | median s | min s | time / imperative | speed-up | CPU s / step | other load (cores) |",
            "|---|---|---|---|---|---|---|---|"]
    for r in results:
        ref = next((x for x in results if x["arch"] == r["arch"] and x["variant"] == "imperative"), None)
        ratio = f"{r['median'] / ref['median']:.2f}" if ref else "-"
        speed = f"{ref['median'] / r['median']:.2f}x" if ref else "-"
        other = "?" if r["other_load"] is None else f"{r['other_load']:.2f}"
        rows.append(f"| {r['arch']} | {r['variant']} | {r['median']:.2f} | {r['min']:.2f} | {ratio} | {speed} "
                    f"| {r['cpu_per_step']:.1f} | {other} |")
    return "\n".join(rows)


# --- quality: do the variants compute the same training step? ------------------------------

def _grads(generator):
    return {k: p.grad().asnumpy().copy() for k, p in generator.collect_params().items() if p.grad_req != "null"}


def _compare_grads(a, b):
    va = np.concatenate([a[k].ravel() for k in sorted(a)])
    vb = np.concatenate([b[k].ravel() for k in sorted(b)])
    cosine = float(va @ vb / (np.linalg.norm(va) * np.linalg.norm(vb)))
    rel = float(np.linalg.norm(va - vb) / np.linalg.norm(vb))
    return cosine, rel


def run_quality(args):
    """Each variant against ``imperative`` on real photos: losses, gradients, ``--steps`` Adam steps."""
    vgg_weights, vgg_note = vgg_weights_choice()
    inputs = real_inputs(args.batch_size, args.image_size, args.photos, args.style)
    if vgg_weights is None or inputs is None:
        raise SystemExit("--quality needs the cached ImageNet VGG16 weights and --photos/--style data")
    batches, style = inputs
    info = machine_info()
    info.update(vgg_weights=vgg_note, inputs="real photos")
    print(header(info, args))
    print(f"photos: {args.photos} (crops of 8 batches), style: {args.style}; {args.steps} Adam steps (lr 1e-3)\n")
    report = []
    # The float-noise yardstick: the reference run again with about one float32 ulp of noise on the
    # photos. Adam moves every weight by about lr per step whatever the size of its gradient, so
    # gradients that differ only by rounding soon give visibly different weights and outputs.
    noisy = [(b * (1 + 1e-7 * np.random.RandomState(i).randn(*b.shape))).astype(np.float32)
             for i, b in enumerate(batches)]
    for arch in args.archs:
        runs = {}
        for variant in args.variants + ["imperative+noise"]:
            data = noisy if variant == "imperative+noise" else batches
            generator, graph, loss, trainer, _ = build(arch, variant.split("+")[0], vgg_weights, seed=1)
            grams = loss.style_targets(mx.nd.array(style))
            history = []
            for step in range(args.steps):
                terms, stylized = train_step(graph, trainer, mx.nd.array(data[step % len(data)]), grams,
                                             step=step + 1)
                if step == 0:  # the gradients are those of the step, Adam leaves them as they were
                    first = dict(losses=[terms[n] for n in COMPARED], grads=_grads(generator),
                                 stylized=stylized.asnumpy())
                history.append([terms[n] for n in COMPARED])
            params = {k: p.data().asnumpy() for k, p in generator.collect_params().items()}
            runs[variant] = dict(first=first, history=history, params=params,
                                 output_after=generator(mx.nd.array(batches[0])).asnumpy())
            del generator, graph, loss, trainer
            gc.collect()
        ref = runs["imperative"]
        for variant, run in runs.items():
            if variant == "imperative":
                continue
            names = COMPARED
            loss_rel = {n: abs(a - b) / abs(b) for n, a, b in zip(names, run["first"]["losses"], ref["first"]["losses"])}
            cosine, grad_rel = _compare_grads(run["first"]["grads"], ref["first"]["grads"])
            out_diff = float(np.abs(run["first"]["stylized"] - ref["first"]["stylized"]).max())
            last_rel = {n: abs(a - b) / abs(b) for n, a, b in zip(names, run["history"][-1], ref["history"][-1])}
            pv = np.concatenate([run["params"][k].ravel() for k in sorted(ref["params"])])
            pr = np.concatenate([ref["params"][k].ravel() for k in sorted(ref["params"])])
            param_rel = float(np.linalg.norm(pv - pr) / np.linalg.norm(pr))
            out_after = float(np.abs(run["output_after"] - ref["output_after"]).max())
            out_after_mean = float(np.abs(run["output_after"] - ref["output_after"]).mean())
            rec = dict(arch=arch, variant=variant, loss_rel=loss_rel, grad_cosine=cosine, grad_rel_l2=grad_rel,
                       stylized_max_abs=out_diff, losses_after_steps_rel=last_rel, params_after_steps_rel_l2=param_rel,
                       stylized_after_steps_max_abs=out_after, stylized_after_steps_mean_abs=out_after_mean,
                       losses=run["first"]["losses"],
                       reference_losses=ref["first"]["losses"])
            report.append(rec)
            print(f"{arch} {variant} vs imperative" + (" (the float-noise yardstick: photos x (1 + 1e-7 noise))"
                                                       if variant == "imperative+noise" else "") + ":")
            print("  losses at step 1     " + ", ".join(f"{n} {a:.6g} (ref {b:.6g}, rel {loss_rel[n]:.1e})"
                                                        for n, a, b in zip(names, run['first']['losses'],
                                                                           ref['first']['losses'])))
            print(f"  generator gradient   cosine {cosine:.7f}, relative L2 difference {grad_rel:.1e}")
            print(f"  stylized output      max |difference| {out_diff:.2e} (0-255 scale)")
            print(f"  after {args.steps} Adam steps   " + ", ".join(f"{n} rel {v:.1e}" for n, v in last_rel.items())
                  + f"; weights relative L2 difference {param_rel:.1e}; stylized output |difference| "
                  f"max {out_after:.2f}, mean {out_after_mean:.3f} (0-255)")
    if args.json:
        Path(args.json).write_text(json.dumps(dict(machine=info, options=vars(args), quality=report), indent=1))
        print(f"wrote {args.json}")
    return report


# --- breakdown: where does a hybrid-fast step spend its time? ------------------------------

class _GeneratorOnly(gluon.HybridBlock):
    """The generator in its training formulation with a cheap stand-in loss."""

    def __init__(self, generator, batch_size, **kwargs):
        from mxstyle.models.layers import NormScratch

        super().__init__(**kwargs)
        with self.name_scope():
            self.generator = generator
            self.scratch = NormScratch(batch_size)

    def hybrid_forward(self, F, photos, weights):
        from mxstyle.models.layers import training_formulation

        with training_formulation(self.scratch):
            return F.mean(self.generator(photos) * weights)


class _LossOnly(gluon.HybridBlock):
    """The perceptual loss of a given image: VGG on it and on the photos, content/style/tv."""

    def __init__(self, loss, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.loss = loss

    def hybrid_forward(self, F, stylized, photos, *grams):
        targets = self.loss.content_vgg(F.BlockGrad(photos))
        return F.mean(self.loss(stylized, *targets, *grams)[0])


def _median_time(fn, repeats, warmup):
    return statistics.median(run_times(fn, repeats, warmup))


def _op_profile(graph, trainer, photos, grams):
    """Operator time of one step from mx.profiler, grouped; needs MXNET_EXEC_BULK_EXEC_TRAIN=0."""
    import re

    mx.profiler.set_config(profile_all=True, aggregate_stats=True, filename=os.devnull)
    mx.profiler.set_state("run")
    train_step(graph, trainer, photos, grams)
    mx.profiler.set_state("stop")
    text = mx.profiler.dumps(reset=True)
    ops = {}
    section = text[text.find("operator"):]
    for line in section.splitlines()[4:]:
        m = re.match(r"^(\S+)\s+(\d+)\s+([\d.]+)", line)
        if m:
            ops[m.group(1)] = ops.get(m.group(1), 0.0) + float(m.group(3)) / 1000
    groups = [("convolution forward", ("Convolution",)), ("convolution backward", ("_backward_Convolution",)),
              ("instance norm (BatchNorm) fwd + bwd", ("BatchNorm", "_backward_BatchNorm", "InstanceNorm",
                                                       "_backward_InstanceNorm")),
              ("Gram matrices fwd + bwd", ("_linalg_syrk", "_backward_linalg_syrk", "batch_dot",
                                           "_backward_batch_dot")),
              ("ReLU fwd + bwd", ("Activation", "_backward_Activation", "relu", "_backward_relu")),
              ("max pooling fwd + bwd", ("Pooling", "_backward_Pooling")),
              ("reflection pad fwd + bwd", ("Pad", "_backward_Pad")),
              ("nearest upsampling fwd + bwd", ("UpSampling", "_backward_UpSampling")),
              ("Adam update", ("adam_update",))]
    rows, used = [], set()
    for label, names in groups:
        rows.append((label, sum(ops.get(n, 0.0) for n in names)))
        used.update(names)
    rest = {k: v for k, v in ops.items() if k not in used and not k.startswith("Delete")}
    biggest = ", ".join(sorted(rest, key=rest.get, reverse=True)[:4])
    rows.append(("everything else (%d ops: %s ...)" % (len(rest), biggest), sum(rest.values())))
    return rows


def _breakdown_arch(arch, args, batches, style, vgg_weights):
    generator, graph, loss, trainer, _ = build(arch, "hybrid-fast", vgg_weights)
    grams = loss.style_targets(mx.nd.array(style))
    photos = mx.nd.array(batches[0])
    full = _median_time(lambda: train_step(graph, trainer, photos, grams), args.repeats, args.warmup)

    gen_only = _GeneratorOnly(generator, args.batch_size)
    gen_only.hybridize(static_alloc=True, static_shape=True)
    weights = mx.nd.random.normal(shape=photos.shape)

    def gen_step():
        with autograd.record():
            out = gen_only(photos, weights)
        out.backward()
        mx.nd.waitall()

    loss_only = _LossOnly(loss)
    loss_only.hybridize(static_alloc=True, static_shape=True)
    stylized = mx.nd.array(batches[1 % len(batches)])
    stylized.attach_grad()

    def loss_step():
        with autograd.record():
            out = loss_only(stylized, photos, *grams)
        out.backward()
        mx.nd.waitall()

    def adam_time():  # Trainer.step wants fresh gradients: make some first, untimed
        gen_step()
        t0 = time.perf_counter()
        trainer.step(1)
        mx.nd.waitall()
        return time.perf_counter() - t0

    parts = [("generator forward + backward", _median_time(gen_step, args.repeats, args.warmup)),
             ("loss network (VGG16 x2 + losses) forward + backward", _median_time(loss_step, args.repeats,
                                                                                 args.warmup)),
             ("Adam update", statistics.median(adam_time() for _ in range(args.repeats)))]
    return full, parts, _op_profile(graph, trainer, photos, grams)


def run_breakdown(args):
    if os.environ.get("MXNET_EXEC_BULK_EXEC_TRAIN") != "0":
        # per-operator times need MXNet's bulk execution off; it is read when mxnet starts
        env = dict(os.environ, MXNET_EXEC_BULK_EXEC_TRAIN="0", MXNET_EXEC_BULK_EXEC_INFERENCE="0")
        os.execve(sys.executable, [sys.executable] + sys.argv, env)
    vgg_weights, vgg_note = vgg_weights_choice()
    inputs = real_inputs(args.batch_size, args.image_size, args.photos, args.style)
    info = machine_info()
    info.update(vgg_weights=vgg_note, inputs="real photos" if inputs else "random images")
    batches, style = inputs or random_inputs(args.batch_size, args.image_size)
    print(header(info, args))
    print("(MXNet bulk execution off for the operator profile: steps run a little slower than in the table)")
    report = []
    for arch in args.archs:
        full, parts, ops = _breakdown_arch(arch, args, batches, style, vgg_weights)
        gc.collect()
        print(f"\n{arch}, hybrid-fast: full step {full:.2f} s (median of {args.repeats})")
        print("| part, timed alone | median s | share of the step |\n|---|---|---|")
        for label, t in parts:
            print(f"| {label} | {t:.2f} | {t / full:.0%} |")
        total_ops = sum(t for _, t in ops)
        print("\n| operators in one step (mx.profiler) | s | share |\n|---|---|---|")
        for label, t in ops:
            print(f"| {label} | {t:.2f} | {t / total_ops:.0%} |")
        report.append(dict(arch=arch, full_step=full, parts=parts, operators=ops))
    if args.json:
        Path(args.json).write_text(json.dumps(dict(machine=info, options=vars(args), breakdown=report), indent=1))
        print(f"wrote {args.json}")
    return report


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--archs", default="johnson,johnson_lite", help="comma-separated generator names")
    p.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                   help="comma-separated, from " + ", ".join(VARIANTS) + " (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--image-size", type=int, default=256)
    p.add_argument("--repeats", type=int, default=6, help="timed steps per variant (default: %(default)s)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first (default: %(default)s)")
    p.add_argument("--json", help="also write the results to this file")
    p.add_argument("--interleave", action="store_true",
                   help="build all variants of an arch, then time them in rounds (spreads a drifting machine "
                        "load over them, but the graphs then compete for caches and memory: slower steps)")
    p.add_argument("--photos", default=None,
                   help="folder of training photos (default: random images, for timing only)")
    p.add_argument("--style", default=str(DEFAULT_STYLE), help="the painting (default: %(default)s)")
    p.add_argument("--quality", action="store_true", help="compare the variants' results instead of timing them")
    p.add_argument("--steps", type=int, default=5,
                   help="Adam steps in lockstep for --quality, at least 1 (default: %(default)s)")
    p.add_argument("--breakdown", action="store_true", help="time the parts of the hybrid-fast step instead")
    args = p.parse_args(argv)
    args.archs = [a for a in args.archs.split(",") if a]
    args.variants = [v for v in args.variants.split(",") if v]
    bad = [v for v in args.variants if v not in VARIANTS]
    if bad:
        p.error(f"unknown variant(s) {', '.join(bad)}; choose from {', '.join(VARIANTS)}")
    if args.quality:
        if args.steps < 1:
            p.error("--steps must be at least 1: the first step gives the losses and gradients compared")
        if "imperative" not in args.variants:
            args.variants.insert(0, "imperative")
        return run_quality(args)
    if args.breakdown:
        return run_breakdown(args)
    return run_timing(args)


if __name__ == "__main__":
    main()
