"""``python bench/run.py``: seconds per image against the 2 s target, beside the alternatives.

With no arguments it measures the shipped default model on every installed backend and precision
at 256², 512², 1024², 2048² and 4000 x 3000 and prints a table. For each case:

- latency after warm-up (median, p90 and min of repeated runs) and whether the median is under 2 s;
- the peak RSS of the process running it (each backend and precision runs in a fresh process,
  sizes smallest first, see ``bench/measure.py``);
- achieved GFLOP/s from the network's counted FLOPs (:mod:`mxstyle.models.flops`) and its
  fraction of this machine's peak, measured in the same run (an fp32 matrix multiply in
  onnxruntime, ``bench/costs.py``);
- PSNR of the output against MXNet fp32 (the reference: the network as trained; ``--reference
  onnxruntime`` for a faster one);
- the same network with the same weights in PyTorch eager (``bench/torch_eager.py``) when torch is
  installed (``pip install -e ".[torch]"``); the report says when it is skipped;
- end to end at 4000 x 3000 (read the JPEG, stylize, write the JPEG) with the backend ``Stylizer``
  picks by itself;
- the training step (batch 4) and Gatys iteration costs at 256² and 512².

Examples::

    python bench/run.py                                   # the default model, everything
    python bench/run.py --quick                           # < 2 minutes: 256² and 1024², fewer engines
    python bench/run.py --models langlois great_wave --sizes 1024 4000x3000 \\
        --json bench/results.json --markdown bench/results.md --plot docs/images/bench.png

Timings on a shared machine are noisy: the header gives the load average, and comparisons are
ratios within one run.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

import numpy as np  # noqa: E402

from machine import describe, machine_info  # noqa: E402

TARGET_S = 2.0
ENGINES = (('openvino', 'bf16'), ('openvino', 'fp32'), ('onnxruntime', 'int8'), ('onnxruntime', 'fp32'),
           ('mxnet', 'int8'), ('mxnet', 'fp32'), ('opencv', 'fp32'), ('torch', 'fp32'))
ALL_BACKENDS = ('onnxruntime', 'openvino', 'mxnet', 'opencv', 'torch')
FULL_SIZES = ((256, 256), (512, 512), (1024, 1024), (2048, 2048), (3000, 4000))
QUICK_SIZES = ((256, 256), (1024, 1024))
DEFAULT_PHOTO = ROOT / 'mxstyle' / 'samples' / 'chelsea.jpg'  # the shipped sample photo


def parse_size(text):
    """``1024`` -> (1024, 1024); ``4000x3000`` (width x height, as photos are named) -> (3000, 4000)."""
    try:
        if 'x' in text.lower():
            w, h = (int(v) for v in text.lower().split('x'))
        else:
            w = h = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'bad size {text!r}: give N or WIDTHxHEIGHT') from None
    if h < 8 or w < 8:
        raise argparse.ArgumentTypeError(f'size {text!r} is too small (8 pixels at least)')
    return h, w


def size_label(h, w):
    return f'{w}²' if h == w else f'{w}x{h}'


def backend_installed(backend):
    import importlib.util

    module = {'onnxruntime': 'onnxruntime', 'openvino': 'openvino', 'mxnet': 'mxnet', 'opencv': 'cv2',
              'torch': 'torch'}[backend]
    return importlib.util.find_spec(module) is not None


def _run_script(script, spec, timeout):
    """Run ``bench/SCRIPT SPEC.json`` in a fresh process; returns (records, error text or None)."""
    with tempfile.NamedTemporaryFile('w', suffix='.json', delete=False) as f:
        json.dump(spec, f)
    try:
        proc = subprocess.run([sys.executable, str(BENCH / script), f.name], capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return [], f'timed out after {timeout} s'
    finally:
        os.unlink(f.name)
    records = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith('{')]
    error = None
    if proc.returncode != 0:
        lines = [l for l in proc.stderr.strip().splitlines() if l.strip()]
        error = lines[-1] if lines else f'exit status {proc.returncode}'
    return records, error


def plan_engines(card, backends, precisions):
    """[(backend, precision)] to measure for a model card, and [(engine, why skipped)]."""
    from mxstyle.runtime import ROLES

    chosen, skipped = [], []
    for backend, precision in ENGINES:
        if backend not in backends or precision not in precisions:
            continue
        if not backend_installed(backend):
            skipped.append(((backend, precision), f'{backend} is not installed'))
            continue
        roles = ('onnx_fp32',) if backend == 'torch' else ROLES[(backend, precision)]
        files = card.get('files', {})
        missing = [r for r in roles if r not in files]
        if precision == 'bf16':
            from mxstyle.runtime.backends import openvino_has_bf16

            if not ((card.get('bf16') or {}).get(backend) or {}).get('kept'):
                skipped.append(((backend, precision), 'the card records no passed bf16 gate (export --bf16)'))
                continue
            if not openvino_has_bf16():
                skipped.append(((backend, precision), 'this CPU does not compute bf16 natively'))
                continue
        if missing:
            skipped.append(((backend, precision), 'no int8 file (it did not pass the export\'s fidelity gate '
                            'or was not exported)' if precision == 'int8' else f'no {"/".join(missing)} file'))
            continue
        chosen.append((backend, precision))
    return chosen, skipped


def measure_model(model, args, log):
    """Every latency record of one model, with PSNR against the reference filled in."""
    from mxstyle.quality import psnr
    from mxstyle.runtime import Stylizer
    from mxstyle import model_folder as cards

    model_dir = cards.resolve_model_dir(model)
    card = cards.load_card(model_dir)
    name = card.get('name') or model_dir.name
    engines, skipped = plan_engines(card, args.backends, args.precisions)
    reference = (args.reference, 'fp32')
    if reference not in engines and backend_installed(args.reference):
        engines.append(reference)  # needed for the fidelity column even when not asked for
    records, notes = [], [f'{name}: {b} {p} skipped: {why}' for (b, p), why in skipped]
    with tempfile.TemporaryDirectory() as tmp:
        outputs = {}
        for backend, precision in engines:
            save = Path(tmp) / f'{backend}-{precision}'
            save.mkdir()
            spec = dict(model=str(model_dir), backend=backend, precision=precision,
                        sizes=[list(s) for s in args.sizes], warmup=args.warmup, warmup_large=args.warmup_large,
                        repeats=args.repeats,
                        repeats_large=args.repeats_large, photo=args.photo, threads=args.threads,
                        save_dir=str(save))
            log(f'  {name}: {backend} {precision} ...')
            t0 = time.perf_counter()
            recs, error = _run_script('measure.py', spec, args.timeout)
            if error:
                notes.append(f'{name}: {backend} {precision} failed: {error}')
                log(f'    failed: {error}')
            for rec in recs:
                rec.update(model=name, arch=card.get('arch'))
                records.append(rec)
                log(f'    {size_label(rec["height"], rec["width"]):>10s}  median {rec["median_s"]:.3f} s  '
                    f'peak RSS {rec["peak_rss_mb"]:.0f} MB' + ('  (tiled)' if rec.get('tiled') else ''))
            outputs[(backend, precision)] = save
            log(f'    ({time.perf_counter() - t0:.0f} s)')
        for rec in records:
            ref = outputs.get(reference)
            mine = outputs[(rec['backend'], rec['precision'])] / f'{rec["height"]}x{rec["width"]}.npy'
            ref_file = ref / f'{rec["height"]}x{rec["width"]}.npy' if ref else None
            rec['psnr_reference'] = f'{args.reference} fp32'
            if (rec['backend'], rec['precision']) == reference or not (ref_file and ref_file.is_file()
                                                                        and mine.is_file()):
                rec['psnr_vs_fp32'] = None
            else:
                rec['psnr_vs_fp32'] = round(psnr(np.load(mine), np.load(ref_file), cap=100.0), 2)
        auto = Stylizer(model_dir) if args.end_to_end else None  # what a user gets by default
        cases = [(auto.backend, auto.precision, 'default')] if auto else []
        if auto and args.end_to_end_full:
            cases.append((auto.backend, auto.precision, None))
        if auto and args.end_to_end_torch and backend_installed('torch'):
            cases.append(('torch', 'fp32', None))
        for (h, w), (backend, precision, work_side) in [(size, case) for size in args.end_to_end or ()
                                                        for case in cases]:
            how = 'full resolution' if work_side is None else 'default work side'
            log(f'  {name}: end to end {size_label(h, w)} on {backend} {precision}, {how} ...')
            spec = dict(model=str(model_dir), backend=backend, precision=precision, sizes=[],
                        warmup=args.warmup_e2e, repeats=1, repeats_large=args.repeats_e2e, photo=args.photo,
                        threads=args.threads, end_to_end=[h, w], work_side=work_side)
            recs, error = _run_script('measure.py', spec, args.timeout)
            if error:
                notes.append(f'{name}: end to end failed: {error}')
            for rec in recs:
                rec.update(model=name, arch=card.get('arch'), psnr_vs_fp32=None)
                records.append(rec)
                log(f'    median {rec["median_s"]:.2f} s, peak RSS {rec["peak_rss_mb"]:.0f} MB')
        del auto
    return records, notes


def finish_records(records, peak):
    """Add the derived columns: GFLOP/s, fraction of peak, under target, ratio to PyTorch eager."""
    torch_median = {(r['model'], r['height'], r['width']): r['median_s'] for r in records
                    if r.get('kind') == 'latency' and r['backend'] == 'torch'}
    for r in records:
        flops = r.get('flops')
        r['gflops_per_s'] = round(flops / r['median_s'] / 1e9, 2) if flops and r.get('median_s') else None
        r['peak_fraction'] = (round(r['gflops_per_s'] / peak, 4) if peak and r['gflops_per_s'] else None)
        r['under_target'] = r['median_s'] < TARGET_S
        t = torch_median.get((r['model'], r['height'], r['width']))
        r['speedup_vs_torch'] = (round(t / r['median_s'], 2) if t and r.get('kind') == 'latency'
                                 and r['backend'] != 'torch' else None)
    return records


def _fmt(v, spec):
    return '-' if v is None else format(v, spec)


def table(records):
    head = ('model', 'backend', 'prec', 'size', 'median s', 'p90 s', 'min s', '<2s', 'RSS MB', 'GFLOP/s',
            '% peak', 'PSNR dB', 'vs torch')
    rows = []
    for r in records:
        if r.get('kind') != 'latency':
            continue
        size = size_label(r['height'], r['width']) + (' t' if r.get('tiled') else '')
        rows.append((r['model'], r['backend'], r['precision'], size, _fmt(r['median_s'], '.3f'),
                     _fmt(r['p90_s'], '.3f'), _fmt(r['min_s'], '.3f'), 'yes' if r['under_target'] else 'no',
                     _fmt(r['peak_rss_mb'], '.0f'), _fmt(r['gflops_per_s'], '.1f'),
                     _fmt(None if r['peak_fraction'] is None else 100 * r['peak_fraction'], '.1f'),
                     _fmt(r['psnr_vs_fp32'], '.1f'),
                     '-' if r['speedup_vs_torch'] is None else f'{r["speedup_vs_torch"]:.2f}x'))
    return [head] + rows


def summary(records):
    """Per model and size: the fastest engine, with its ratio to PyTorch eager and to the peak."""
    best = {}
    for r in records:
        if r.get('kind') != 'latency' or r['backend'] == 'torch':
            continue
        key = (r['model'], r['height'], r['width'])
        if key not in best or r['median_s'] < best[key]['median_s']:
            best[key] = r
    head = ('model', 'size', 'fastest', 'median s', '<2s', 'PSNR dB', 'x faster than torch eager', '% of peak')
    rows = [(r['model'], size_label(r['height'], r['width']), f'{r["backend"]} {r["precision"]}',
             f'{r["median_s"]:.3f}', 'yes' if r['under_target'] else 'no', _fmt(r['psnr_vs_fp32'], '.1f'),
             '-' if r['speedup_vs_torch'] is None else f'{r["speedup_vs_torch"]:.2f}',
             _fmt(None if r['peak_fraction'] is None else 100 * r['peak_fraction'], '.1f'))
            for r in sorted(best.values(), key=lambda r: (r['model'], r['height'] * r['width']))]
    return [head] + rows


def text_table(rows):
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = ['  '.join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip() for row in rows]
    return '\n'.join([lines[0], '  '.join('-' * w for w in widths)] + lines[1:])


def e2e_ratio_lines(e2e):
    """Every other end-to-end case against the first model's default settings at the same size, as
    "N.NNx as long": the comparisons the 2 s target is reported with."""
    lines = []
    for base in [r for r in e2e if r['model'] == e2e[0]['model'] and r.get('work_side')]:
        for r in e2e:
            if r is not base and (r['height'], r['width']) == (base['height'], base['width']):
                lines.append(f'end to end {size_label(r["height"], r["width"])}: {r["model"]} on {r["backend"]} '
                             f'{r["precision"]} (work side {r.get("work_side") or "full"}) takes '
                             f'{r["median_s"] / base["median_s"]:.2f}x as long as {base["model"]} on '
                             f'{base["backend"]} {base["precision"]} (work side {base.get("work_side") or "full"})')
    return lines


def markdown_table(rows):
    lines = ['| ' + ' | '.join(str(v) for v in rows[0]) + ' |', '|' + '---|' * len(rows[0])]
    return '\n'.join(lines + ['| ' + ' | '.join(str(v) for v in row) + ' |' for row in rows[1:]])


def cost_lines(costs):
    out = []
    for c in costs:
        if c['kind'] == 'peak':
            out.append(f'machine peak: {c["gflops_per_s"]:.0f} GFLOP/s ({c["what"]}, {c["threads"]} threads, best of runs)')
        elif c['kind'] == 'train_step':
            out.append(f'training step, {c["arch"]}, batch 4 x {c["height"]}²: {c["median_s"]:.2f} s ({c["vgg"]})')
        elif c['kind'] == 'gatys_iteration':
            out.append(f'Gatys iteration at {c["height"]}² (VGG16 forward + backward): {c["median_s"]:.2f} s '
                       f'({c["vgg"]})')
    return out


def plot(records, path, info):
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    lat = [r for r in records if r.get('kind') == 'latency']
    models = sorted({r['model'] for r in lat})
    fig, axes = plt.subplots(1, len(models), figsize=(6.5 * len(models), 4.5), squeeze=False)
    for ax, model in zip(axes[0], models):
        engines = sorted({(r['backend'], r['precision']) for r in lat if r['model'] == model})
        for backend, precision in engines:
            rs = sorted((r for r in lat if r['model'] == model and r['backend'] == backend
                         and r['precision'] == precision), key=lambda r: r['height'] * r['width'])
            ax.plot([r['height'] * r['width'] / 1e6 for r in rs], [r['median_s'] for r in rs], 'o-',
                    label=f'{backend} {precision}')
        ax.axhline(TARGET_S, color='k', ls='--', lw=1, label='2 s target')
        ax.set_xscale('log')
        ax.set_yscale('log')
        ax.set_xlabel('megapixels')
        ax.set_ylabel('seconds per image (median)')
        ax.set_title(f'{model}')
        ax.grid(True, which='both', alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f'{info["cpu"]}, {info["cores"]} cores', fontsize=9)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--models', nargs='+', default=None,
                   help='model names or folders (default: the shipped default model)')
    p.add_argument('--backends', nargs='+', default=None, choices=ALL_BACKENDS,
                   help='default: all five (--quick: onnxruntime, openvino and torch)')
    p.add_argument('--precisions', nargs='+', default=['fp32', 'int8', 'bf16'], choices=['fp32', 'int8', 'bf16'])
    p.add_argument('--sizes', nargs='+', type=parse_size, default=None,
                   help='N (square) or WIDTHxHEIGHT; default 256 512 1024 2048 4000x3000')
    p.add_argument('--repeats', type=int, default=5, help='timed runs per size (default 5)')
    p.add_argument('--repeats-large', type=int, default=3, help='timed runs above 4 MP (default 3)')
    p.add_argument('--warmup', type=int, default=1, help='untimed runs per size up to 4 MP (default 1)')
    p.add_argument('--warmup-large', type=int, default=0,
                   help='untimed runs above 4 MP (default 0: those run in tiles the smaller sizes warmed up)')
    p.add_argument('--threads', type=int, default=None, help='intra-op threads (default: all cores)')
    p.add_argument('--photo', default=None,
                   help=f'input photo, resized to each size (default {DEFAULT_PHOTO.relative_to(ROOT)}; '
                        'synthetic: a synthetic photo-like image)')
    p.add_argument('--end-to-end', type=parse_size, nargs='+', default=None,
                   help='file -> file sizes, with the default settings (default 4000x3000 5120x2880; off with --quick)')
    p.add_argument('--end-to-end-full', action='store_true',
                   help='also time each end-to-end size at full resolution (work_side=None)')
    p.add_argument('--end-to-end-torch', action='store_true',
                   help='also time each end-to-end size in PyTorch eager on the same weights, the whole photo in '
                        'one pass as its users run it (for johnson at 12 MP: about a minute and several GB a run)')
    p.add_argument('--repeats-e2e', type=int, default=3, help='timed end-to-end runs (default %(default)s)')
    p.add_argument('--warmup-e2e', type=int, default=1, help='untimed end-to-end runs first (default %(default)s)')
    p.add_argument('--no-end-to-end', action='store_true')
    p.add_argument('--no-costs', action='store_true', help='skip the training-step and Gatys costs')
    p.add_argument('--train-sizes', nargs='*', type=int, default=None, help='default 256 512')
    p.add_argument('--gatys-sizes', nargs='*', type=int, default=None, help='default 256 512')
    p.add_argument('--quick', action='store_true',
                   help='256² and 1024², onnxruntime and torch, 2 runs, no end to end, Gatys cost at 256² '
                        '(< 2 minutes)')
    p.add_argument('--timeout', type=int, default=3600, help='seconds per measuring process')
    p.add_argument('--reference', default=None, choices=['mxnet', 'onnxruntime'],
                   help='the fp32 backend PSNR is measured against (default mxnet: the network as trained; '
                        '--quick: onnxruntime, which agrees with it to 1e-3 and is 1.5-2x faster)')
    p.add_argument('--json', metavar='FILE')
    p.add_argument('--markdown', metavar='FILE')
    p.add_argument('--plot', metavar='FILE.png')
    args = p.parse_args(argv)
    for name in ('repeats', 'repeats_large'):
        if getattr(args, name) < 1:
            p.error(f'--{name.replace("_", "-")} must be at least 1')
    if args.warmup < 0:
        p.error('--warmup must be >= 0')
    if args.quick:
        # under 2 minutes on 2 cores for a johnson model: onnxruntime (what Stylizer picks) and PyTorch eager,
        # 256² and 1024², 2 runs each, the Gatys iteration at 256² (the training step only if asked)
        args.sizes = args.sizes or list(QUICK_SIZES)
        args.backends = args.backends or ['onnxruntime', 'openvino', 'torch']
        args.reference = args.reference or 'onnxruntime'
        args.repeats = min(args.repeats, 2)
        args.repeats_large = min(args.repeats_large, 1)
        args.train_sizes = [] if args.train_sizes is None else args.train_sizes
        args.gatys_sizes = [256] if args.gatys_sizes is None else args.gatys_sizes
        cost_repeats = 2
    else:
        args.sizes = args.sizes or list(FULL_SIZES)
        args.backends = args.backends or list(ALL_BACKENDS)
        args.reference = args.reference or 'mxnet'
        args.end_to_end = args.end_to_end or [(3000, 4000), (2880, 5120)]
        args.train_sizes = [256, 512] if args.train_sizes is None else args.train_sizes
        args.gatys_sizes = [256, 512] if args.gatys_sizes is None else args.gatys_sizes
        cost_repeats = 3
    if args.no_end_to_end:
        args.end_to_end = None
    if args.no_costs:
        args.train_sizes, args.gatys_sizes = [], []
    args.cost_repeats = cost_repeats
    if args.photo is None:
        args.photo = str(DEFAULT_PHOTO)
    elif args.photo == 'synthetic':
        args.photo = None
    if args.photo is not None and not Path(args.photo).is_file():
        p.error(f'--photo {args.photo}: no such file')
    return args


def main(argv=None):
    args = parse_args(argv)
    from mxstyle.errors import MxstyleError
    from mxstyle.runtime import DEFAULT_MODEL

    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    models = args.models or [DEFAULT_MODEL]
    info = machine_info()
    started = time.time()
    log(describe(info))
    log(f'load average at start {info["loadavg_start"]:.2f}; input: {args.photo or "synthetic photo"}')

    # the machine's peak first, in this run, so the fractions compare like with like
    costs, cost_error = _run_script('costs.py', dict(peak=True, threads=args.threads), args.timeout)
    peak = next((c['gflops_per_s'] for c in costs if c['kind'] == 'peak'), None)
    notes = [] if not cost_error else [f'peak measurement failed: {cost_error}']
    if peak:
        log(f'machine peak {peak:.0f} GFLOP/s')

    records = []
    try:
        for model in models:
            recs, model_notes = measure_model(model, args, log)
            records += recs
            notes += model_notes
    except MxstyleError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    if not backend_installed('torch') and 'torch' in args.backends:
        notes.append('PyTorch eager skipped: torch is not installed (pip install -e ".[torch]")')

    if args.train_sizes or args.gatys_sizes:
        from mxstyle import model_folder as cards

        arch = cards.load_card(cards.resolve_model_dir(models[0])).get('arch')
        log(f'  training step ({arch}) and Gatys iteration costs ...')
        more, error = _run_script('costs.py', dict(arch=arch, train_sizes=args.train_sizes,
                                                   gatys_sizes=args.gatys_sizes, repeats=args.cost_repeats,
                                                   threads=args.threads), args.timeout)
        costs += more
        if error:
            notes.append(f'training/Gatys costs failed: {error}')

    records = finish_records(records, peak)
    info['loadavg_end'] = os.getloadavg()[0]
    info['seconds'] = round(time.time() - started, 1)
    header = [describe(info), f'load average {info["loadavg_start"]:.2f} at start, {info["loadavg_end"]:.2f} at end; '
              f'{info["seconds"]:.0f} s; input {Path(args.photo).name if args.photo else "synthetic photo"}; '
              f'warm-up {args.warmup} ({args.warmup_large} above 4 MP), {args.repeats} runs ({args.repeats_large} above 4 MP); '
              f'PSNR against {args.reference} fp32; "t" = tiled']
    e2e = [r for r in records if r.get('kind') == 'end_to_end']
    lines = cost_lines(costs) + [
        f'end to end {size_label(r["height"], r["width"])} JPEG -> JPEG, {r["model"]} on {r["backend"]} '
        f'{r["precision"]}, work side {r.get("work_side") or "full"}: median {r["median_s"]:.2f} s of '
        f'{len(r["times_s"])}, peak RSS {r["peak_rss_mb"]:.0f} MB' for r in e2e] + e2e_ratio_lines(e2e) + notes
    print('\n'.join(header) + '\n')
    print(text_table(table(records)))
    print('\nFastest per model and size:\n' + text_table(summary(records)))
    print('\n' + '\n'.join(lines))

    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(dict(machine=info, command=' '.join(['python bench/run.py'] + (argv or sys.argv[1:])),
                                                   target_s=TARGET_S, peak_gflops_per_s=peak, costs=costs,
                                                   notes=notes, records=records), indent=1))
    if args.markdown:
        md = ['*' + h + '*  ' for h in header] + ['', markdown_table(table(records)), '',
                                                   '**Fastest per model and size**', '',
                                                   markdown_table(summary(records)), ''] + [f'- {l}' for l in lines]
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text('\n'.join(md) + '\n')
    if args.plot and records:
        plot(records, args.plot, info)
    return 0


if __name__ == '__main__':
    sys.exit(main())
