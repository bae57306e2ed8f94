"""Quality of style models against the slow, exact method (Gatys et al.): the numbers behind
``mxstyle evaluate`` (``tools/evaluate.py``).

For each photo (longest side ``size``, default 512) and model, the content loss at relu2_2 and
relu4_2 and the Gram style loss over relu1_1..relu5_1 (:mod:`mxstyle.quality`) of:

- the model's fp32 output, and its int8 output when the model has one (plus its PSNR against fp32),
  with the share of pixels it blew out to white (:func:`mxstyle.quality.blown_out`);
- Gatys optimization from the photo (``gatys_iters`` L-BFGS iterations, default 300) with the
  model's own style image (``models/NAME/style.jpg``): the quality reference.

The tables give each number and the ratio model / Gatys (lower losses are closer; a ratio of 1 is
the quality of the slow method), and the model's style loss as a number of Gatys iterations: the
iteration at which the optimization's style loss falls to the model's (measured on snapshots of the
optimization at the iterations of ``GATYS_CURVE``, interpolated between them), with its content
relu4_2 against the optimization's at that iteration (<= 1: it keeps the photo's objects at least as
well as Gatys does with as much style). Gatys results are
cached in a :class:`GatysCache` (minutes per photo). :func:`summary_block` puts the
summary table (one row per model) between the markers ``SUMMARY_BEGIN`` and ``SUMMARY_END`` of a
Markdown file, so the README's numbers are this module's output.
"""
import hashlib
import json
import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from . import io
from .errors import ConfigError, ImageError
from .files import write_text_atomic
from .io import READ_EXTENSIONS

GOAL_RATIO, GOAL_PSNR = 1.5, 35.0
METRICS = ('content_relu2_2', 'content_relu4_2', 'style')
# Where summary_block writes the summary table in a Markdown file.
SUMMARY_BEGIN, SUMMARY_END = '<!-- evaluate.py summary: begin -->', '<!-- evaluate.py summary: end -->'
# Iterations of the Gatys reference whose losses are kept (the curve behind "equals N iterations").
GATYS_CURVE = (0, 1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300)


def default_references():
    """The repository's published Gatys references (``docs/evaluation/gatys_references.json``) in a
    source checkout or an editable install; None in an installed package, which has no docs."""
    root = Path(__file__).resolve().parents[1]
    return root / 'docs' / 'evaluation' / 'gatys_references.json' if (root / 'setup.py').is_file() else None


def _digest(data):
    return hashlib.sha256(data).hexdigest()


class GatysCache:
    """Gatys reference results on disk, keyed by the photo's and the painting's bytes and the
    settings: ``FOLDER/KEY.json`` (losses, seconds) and ``FOLDER/KEY.png`` (the image). A
    reference costs minutes per photo, and does not change while the inputs do not.

    ``references``: a JSON file of published references (``{KEY: info}``, the loss curves without
    the images; the repository keeps its own in ``docs/evaluation/gatys_references.json``). A key
    found only there is a hit without an image, ``(info, None)``: the curve's last point is the
    reference's losses. :meth:`publish` adds an entry to it."""

    def __init__(self, folder, references=None):
        self.folder = Path(folder)
        self.references = None if references is None else Path(references)

    def key(self, photo_bytes, style_bytes, **settings):
        text = json.dumps(dict(photo=_digest(photo_bytes), style=_digest(style_bytes), **settings), sort_keys=True)
        return _digest(text.encode())[:24]

    def get(self, key):
        meta, image = self.folder / f'{key}.json', self.folder / f'{key}.png'
        if meta.is_file() and image.is_file():
            try:
                return json.loads(meta.read_text()), io.read_image(image)
            except (ValueError, OSError, ImageError):
                pass  # a damaged entry is recomputed (or read from the references)
        info = self.published().get(key)
        return None if not (info and info.get('curve')) else (info, None)

    def put(self, key, info, image):
        self.folder.mkdir(parents=True, exist_ok=True)
        io.write_image(self.folder / f'{key}.png', image)
        write_text_atomic(self.folder / f'{key}.json', json.dumps(info, indent=1))

    def published(self):
        """The references file's entries (``{}`` without one, or while it does not exist)."""
        if self.references is None or not self.references.is_file():
            return {}
        try:
            entries = json.loads(self.references.read_text())
        except (ValueError, OSError) as e:
            raise ConfigError(f'Gatys references {self.references}: cannot read it ({e})') from None
        if not isinstance(entries, dict):
            raise ConfigError(f'Gatys references {self.references}: not a JSON object of KEY: reference')
        return entries

    def publish(self, key, info):
        """Add ``info`` (with its curve) under ``key`` to the references file; True if it was new."""
        if self.references is None:
            raise ConfigError('no Gatys references file to publish into')
        entries = self.published()
        if entries.get(key) == info or not info.get('curve'):
            return False
        entries[key] = info
        self.references.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.references, json.dumps(dict(sorted(entries.items())), indent=1) + '\n')
        return True


@dataclass(frozen=True)
class EvaluationOptions:
    """How :func:`evaluate_model` measures: photo size, the Gatys reference and the VGG weights."""
    size: int = 512
    gatys_iters: int = 300
    no_gatys: bool = False           # only the models' own losses, no reference
    cached_gatys_only: bool = False  # compute no reference: use the cached ones
    gatys_curves: bool = False       # recompute cached references that have no loss curve
    vgg_weights: str = 'imagenet'
    publish_gatys: bool = False      # add each reference used to the cache's references file

    def __post_init__(self):
        if self.size < 64:
            raise ConfigError(f'size must be at least 64 (VGG16 relu5_1 needs it), got {self.size}')
        if self.gatys_iters < 1:
            raise ConfigError(f'gatys_iters must be at least 1, got {self.gatys_iters}')
        if self.publish_gatys and self.no_gatys:
            raise ConfigError('--publish-gatys publishes Gatys references; it cannot go with --no-gatys')
        if self.cached_gatys_only and self.gatys_curves:
            raise ConfigError('--gatys-curves recomputes references; it cannot go with --cached-gatys-only')


def summary_block(path, table=None):
    """The text of Markdown file ``path`` with the summary table between its markers replaced by
    ``table`` (unchanged when None: a check, made before the minutes of evaluation). ``table``:
    Markdown text, or the rows of :func:`summary_table`, which replace the rows of the same models
    and keep the others' (a model not evaluated this time keeps its last numbers)."""
    path = Path(path)
    try:
        text_ = path.read_text()
    except OSError as e:
        raise ConfigError(f'--update-docs {path}: cannot read it ({e.strerror})') from None
    begin, end = text_.find(SUMMARY_BEGIN), text_.find(SUMMARY_END)
    if begin < 0 or end < begin:
        raise ConfigError(f'--update-docs {path}: no summary markers; put the lines\n{SUMMARY_BEGIN}\n'
                          f'{SUMMARY_END}\nwhere the table goes')
    if table is None:
        return text_
    if not isinstance(table, str):
        table = markdown(merge_summary_rows(text_[begin + len(SUMMARY_BEGIN):end], table))
    return text_[:begin + len(SUMMARY_BEGIN)] + '\n' + table + '\n' + text_[end:]


def _model_key(cell):
    """The model name in a summary row's first cell: `name` (arch, ...)."""
    return cell.split('`')[1] if cell.count('`') >= 2 else cell


def merge_summary_rows(old_markdown, rows):
    """``rows`` (a header and one row per model) followed by the rows of other models from the
    Markdown table ``old_markdown``, their cells placed under the new header by column name
    ('-' for a column the old table lacks)."""
    lines = [line.strip() for line in old_markdown.splitlines() if line.strip().startswith('|')]
    cells = [[c.strip() for c in line.strip('|').split('|')] for line in lines]
    cells = [c for c in cells if not all(set(x) <= set('-: ') for x in c)]  # drop the |---| line
    if not cells:
        return rows
    old_head, old_rows = cells[0], cells[1:]
    new_models = {_model_key(str(r[0])) for r in rows[1:]}
    kept = []
    for old in old_rows:
        if _model_key(old[0]) in new_models:
            continue
        by_column = dict(zip(old_head, old))
        kept.append([by_column.get(column, '-') for column in rows[0]])
    from .model_folder import DEFAULT_MODEL

    body = sorted(list(rows[1:]) + kept, key=lambda r: _model_key(str(r[0])) != DEFAULT_MODEL)
    return [rows[0]] + body


def find_photos(folder, limit):
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f'--photos {folder}: not a folder')
    photos = sorted(p for p in folder.rglob('*') if p.suffix.lower() in READ_EXTENSIONS and p.is_file())
    if not photos:
        raise ConfigError(f'--photos {folder}: no images ({", ".join(READ_EXTENSIONS)})')
    return photos[:limit] if limit else photos


def geomean(values):
    values = [v for v in values if v is not None and v > 0 and math.isfinite(v)]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def style_image_of(model_dir, card):
    from . import model_folder as cards

    if 'style_image' not in card.get('files', {}):
        raise ConfigError(f'{model_dir}: the model has no style image (style.jpg) to measure the style '
                          'loss against; re-export it with --style-image')
    return cards.file_path(model_dir, card, 'style_image')


def evaluate_model(model, photos, args: EvaluationOptions, cache):
    """``(result, images)``: per-photo numbers and a summary for one model, and its fp32
    output per photo name."""
    from tqdm import tqdm

    from . import io
    from .files import sha256_file
    from .quality import QualityMeter, blown_out, psnr
    from .runtime import Stylizer
    from . import model_folder as cards

    model_dir = cards.resolve_model_dir(model)
    card = cards.load_card(model_dir)
    name = card.get('name') or model_dir.name
    style_path = style_image_of(model_dir, card)
    # the network on every pixel: the numbers are the model's, not the upsampler's
    fp32 = Stylizer(model_dir, precision='fp32', work_side=None)
    try:
        int8 = Stylizer(model_dir, precision='int8', work_side=None)
    except cards.ModelError:  # no int8 file passed the export's fidelity gate
        int8 = None
    meter = QualityMeter(style_path, style_size=args.size, vgg_weights=args.vgg_weights)
    style_bytes = style_path.read_bytes()
    gatys_settings = None
    if not args.no_gatys:  # the cache key; hashing a custom VGG file once, not per photo
        vgg = args.vgg_weights if args.vgg_weights == 'imagenet' else sha256_file(args.vgg_weights)
        gatys_settings = dict(size=args.size, iters=args.gatys_iters, optimizer='lbfgs', init='content',
                              config='default', vgg=vgg)
    rows, images = [], {}
    for path in tqdm(photos, desc=f'evaluate {name}', unit='photo', dynamic_ncols=True):
        photo = io.resize_max_side(io.read_image(path), args.size)
        row = dict(photo=path.name, height=photo.shape[0], width=photo.shape[1])
        t0 = time.perf_counter()
        out = fp32.stylize(photo)
        row['seconds'] = round(time.perf_counter() - t0, 3)
        row['model'] = meter(out, photo)
        row['blown_out_pct'] = round(100 * blown_out(out, photo), 2)
        images[path.name] = out
        if int8 is not None:
            out8 = int8.stylize(photo)
            row['int8'] = dict(meter(out8, photo), psnr_vs_fp32=round(psnr(out8, out), 2),
                               backend=int8.backend)
        reference = None
        if gatys_settings is not None:
            reference = gatys_reference(cache, gatys_settings, path, photo, style_path, style_bytes, args, meter)
        if reference is not None:
            info, gatys_img = reference
            row['gatys'] = dict(reference_losses(info, gatys_img, photo, meter, path.name), seconds=info.get('seconds'))
            if info.get('curve'):
                row['style_gatys_iters'] = equivalent_iterations(info['curve'], row['model']['style'])
                at = curve_value_at(info['curve'], row['style_gatys_iters'], 'content_relu4_2')
                if at:  # the model's objects against Gatys's when it has put on as much style
                    row['content_relu4_2_vs_equal_style'] = row['model']['content_relu4_2'] / at
            for m in METRICS:
                row.setdefault('ratio', {})[m] = row['model'][m] / row['gatys'][m]
                if int8 is not None:
                    row.setdefault('int8_ratio', {})[m] = row['int8'][m] / row['gatys'][m]
        rows.append(row)
    summary = dict(photos=len(rows), gatys_photos=sum('gatys' in r for r in rows), size=args.size,
                   gatys_iters=None if args.no_gatys else args.gatys_iters,
                   backend=fp32.backend, int8_backend=None if int8 is None else int8.backend)
    for m in METRICS:
        summary[f'{m}_ratio'] = geomean([r.get('ratio', {}).get(m) for r in rows])
        summary[f'int8_{m}_ratio'] = geomean([r.get('int8_ratio', {}).get(m) for r in rows])
    # None (beyond the curve) sorts as infinity; the median is None when it falls there
    median_iters = median([math.inf if r['style_gatys_iters'] is None else r['style_gatys_iters']
                           for r in rows if 'style_gatys_iters' in r])
    summary['style_gatys_iters_median'] = None if median_iters in (None, math.inf) else median_iters
    summary['style_gatys_iters_photos'] = sum('style_gatys_iters' in r for r in rows)
    equal_style = [r['content_relu4_2_vs_equal_style'] for r in rows if 'content_relu4_2_vs_equal_style' in r]
    summary['content_relu4_2_vs_equal_style_max'] = max(equal_style) if equal_style else None
    summary['blown_out_pct_mean'] = round(sum(r['blown_out_pct'] for r in rows) / len(rows), 2)
    psnrs = [r['int8']['psnr_vs_fp32'] for r in rows if 'int8' in r]
    summary['int8_psnr_min'] = min(psnrs) if psnrs else None
    summary['int8_psnr_mean'] = sum(psnrs) / len(psnrs) if psnrs else None
    ratios = [summary[f'{m}_ratio'] for m in METRICS]
    summary['goal_met'] = (None if any(r is None for r in ratios) else
                           all(r <= GOAL_RATIO for r in ratios)
                           and (summary['int8_psnr_min'] or 0) >= GOAL_PSNR)
    return dict(name=name, dir=str(model_dir), arch=card.get('arch'), rows=rows, summary=summary), images


def gatys_reference(cache, settings, path, photo, style_path, style_bytes, args, meter):
    """``(info, image)`` of Gatys optimization on ``photo``: from the cache, else computed and cached;
    None when it is not cached and ``--cached-gatys-only`` forbids computing it. ``info['curve']``
    has ``meter``'s losses at the iterations of ``GATYS_CURVE``."""
    from . import io
    from .optimize import stylize_gatys

    key = cache.key(path.read_bytes(), style_bytes, **settings)
    hit = cache.get(key)
    if args.cached_gatys_only or (hit is not None and (hit[0].get('curve') or not args.gatys_curves)):
        if hit is not None and args.publish_gatys:
            cache.publish(key, hit[0])
        return hit
    t0 = time.perf_counter()
    result = stylize_gatys(photo, style_path, size=args.size, iters=args.gatys_iters, vgg_weights=args.vgg_weights,
                           snapshots=[k for k in GATYS_CURVE if k <= args.gatys_iters], progress=False)
    seconds = round(time.perf_counter() - t0, 1)  # the optimization's own time, without the curve's
    curve = [dict(iter=k, **meter(img, photo)) for k, img in sorted(result.snapshots.items())]
    info = dict(settings, seconds=seconds, photo=path.name, style=style_path.name, curve=curve)
    cache.put(key, info, result.image)
    if args.publish_gatys:
        cache.publish(key, info)
    return info, io.read_image(cache.folder / f'{key}.png')  # as stored: the same numbers next time


def reference_losses(info, image, photo, meter, name):
    """The Gatys reference's losses: measured on its image, or (a published reference, no image)
    the last point of its curve, which is that image's losses before it was rounded to 8 bits."""
    if image is None:
        last = info['curve'][-1]
        if last['iter'] != info.get('iters'):
            raise ConfigError(f'the published Gatys reference for {name} has no curve point at its last iteration')
        return {m: last[m] for m in METRICS}
    if image.shape != photo.shape:
        raise ConfigError(f'cached Gatys result for {name} has size {image.shape}, not {photo.shape}')
    return meter(image, photo)


def equivalent_iterations(curve, style):
    """The Gatys iteration at which the style loss falls to ``style``, interpolated linearly in
    log(loss) between the curve's points; 0 when the start is already there, and None when the
    last point is still above it. ``curve``: ``[{'iter', 'style'}, ...]`` in iteration order."""
    if curve[0]['style'] <= style:
        return 0.0
    for a, b in zip(curve, curve[1:]):
        if b['style'] <= style:
            la, lb = math.log(a['style']), math.log(b['style'])
            t = (la - math.log(style)) / (la - lb) if la > lb else 1.0
            return round(a['iter'] + t * (b['iter'] - a['iter']), 1)
    return None


def curve_value_at(curve, iteration, key):
    """The curve's ``key`` loss at a (fractional) ``iteration``, linear between its points; None
    when ``iteration`` is None or beyond the curve."""
    if iteration is None:
        return None
    for a, b in zip(curve, curve[1:]):
        if a['iter'] <= iteration <= b['iter']:
            t = (iteration - a['iter']) / (b['iter'] - a['iter'])
            return a[key] + t * (b[key] - a[key])
    return curve[0][key] if iteration == curve[0]['iter'] else None


def merge_results(previous, new):
    """``previous`` results (an earlier ``--json`` file's) with each model in ``new`` put in place of
    the entry of the same name, or appended: a file keeps the models not evaluated this time."""
    by_name = {r['name']: r for r in new}
    merged = [by_name.pop(r['name'], r) for r in previous]
    return merged + [r for r in new if r['name'] in by_name]


def median(values):
    return statistics.median(values) if values else None


def _f(v, spec='.3g'):
    return '-' if v is None else format(v, spec)


def _times(ratio):
    return '-' if ratio is None else f'{ratio:.2f}x'


def _iters(row_or_summary, key, last):
    if key not in row_or_summary:
        return '-'
    v = row_or_summary[key]
    return f'> {last}' if v is None else f'{v:g}'


def model_table(result):
    s = result['summary']
    head = ('photo', 'content relu2_2', 'content relu4_2', 'style', 'style = Gatys at iteration',
            'content relu4_2 / Gatys at that iteration', 'int8 PSNR dB', 'blown out %')
    rows = []
    for r in result['rows']:
        cells = [r['photo']]
        for m in METRICS:
            cell = _f(r['model'][m])
            if 'gatys' in r:
                cell += f' / {_f(r["gatys"][m])} = {r["ratio"][m]:.2f}x'
            cells.append(cell)
        cells.append(_iters(r, 'style_gatys_iters', s['gatys_iters']))
        cells.append(_times(r.get('content_relu4_2_vs_equal_style')))
        cells.append(_f(r.get('int8', {}).get('psnr_vs_fp32'), '.1f'))
        cells.append(f'{r["blown_out_pct"]:.1f}')
        rows.append(cells)
    cells = ['geometric mean of ratios'] + [_f(s[f'{m}_ratio'], '.2f') + ('x' if s[f'{m}_ratio'] else '')
                                            for m in METRICS]
    cells.append(_iters(s, 'style_gatys_iters_median', s['gatys_iters']) + ' (median)'
                 if s.get('style_gatys_iters_photos') else '-')
    worst = s.get('content_relu4_2_vs_equal_style_max')
    cells.append(_times(worst) + ' (worst)' if worst else '-')
    cells.append(_f(s['int8_psnr_mean'], '.1f') + (f' (min {s["int8_psnr_min"]:.1f})' if s['int8_psnr_min'] else ''))
    cells.append(f'{s["blown_out_pct_mean"]:.1f} (mean)')
    rows.append(cells)
    if any(s[f'int8_{m}_ratio'] for m in METRICS):
        rows.append(['int8: geometric mean of ratios'] + [_f(s[f'int8_{m}_ratio'], '.2f') + 'x' for m in METRICS]
                    + ['', '', '', ''])
    return [head] + rows


def summary_table(results):
    """One row per model, the default model first: its ratios to Gatys, Gatys iterations, int8
    fidelity and blown-out share."""
    from .model_folder import DEFAULT_MODEL

    head = ('model', 'photos (with Gatys reference)', 'content relu2_2', 'content relu4_2', 'style',
            'style = Gatys at iteration (median)', 'content relu4_2 / Gatys at that iteration (worst photo)',
            'int8 PSNR dB, mean (min)', 'blown out %, mean')
    rows = [head]
    for r in sorted(results, key=lambda r: r['name'] != DEFAULT_MODEL):
        s = r['summary']
        n_iters = s.get('style_gatys_iters_photos')
        iters = '-'
        if n_iters:
            iters = _iters(s, 'style_gatys_iters_median', s['gatys_iters'])
            iters += f' ({n_iters} photo{"s" if n_iters > 1 else ""})'
        int8 = '-' if s['int8_psnr_mean'] is None else f'{s["int8_psnr_mean"]:.1f} ({s["int8_psnr_min"]:.1f})'
        default = ', default' if r['name'] == DEFAULT_MODEL else ''
        rows.append([f'`{r["name"]}` ({r["arch"]}{default})', f'{s["photos"]} ({s["gatys_photos"]})']
                    + [_f(s[f'{m}_ratio'], '.2f') + ('x' if s[f'{m}_ratio'] else '') for m in METRICS]
                    + [iters, _times(s.get('content_relu4_2_vs_equal_style_max')), int8,
                       f'{s["blown_out_pct_mean"]:.1f}'])
    return rows


def markdown(rows):
    lines = ['| ' + ' | '.join(rows[0]) + ' |', '|' + '---|' * len(rows[0])]
    return '\n'.join(lines + ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows[1:]])


def text(rows):
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    return '\n'.join('  '.join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def contact_sheet(photos, results, all_images, path, cell=320, gap=6):
    """Rows: photos; columns: the photo, then each model's result; a header row of style images.

    Each row is as tall as its tallest image at ``cell`` px wide, so landscape photos leave no
    white bands; the paintings of the header fit a ``cell`` x ``cell`` box."""
    import numpy as np

    from . import io
    from . import model_folder as cards

    def scaled(img, box_h):
        h, w = img.shape[:2]
        s = min(cell / w, box_h / h)
        return io.resize(img, (max(1, round(h * s)), max(1, round(w * s))))

    def row_of(images, box_h=None):
        images = [np.asarray(i, np.float32) for i in images]
        if box_h is None:  # as tall as the tallest image at the cell's width
            box_h = max(round(i.shape[0] * cell / i.shape[1]) for i in images)
        canvas = np.full((box_h, len(images) * (cell + gap) - gap, 3), 255.0, np.float32)
        for k, img in enumerate(images):
            img = scaled(img, box_h)
            h, w = img.shape[:2]
            top, left = (box_h - h) // 2, k * (cell + gap) + (cell - w) // 2
            canvas[top:top + h, left:left + w] = img
        return canvas

    paintings = [io.read_image(style_image_of(Path(r['dir']), cards.load_card(Path(r['dir'])))) for r in results]
    blank = np.full((8, 8, 3), 255.0, np.float32)
    rows = [row_of([blank] + paintings, box_h=cell)]
    for photo in photos:
        rows.append(row_of([io.read_image(photo)] + [all_images[r['name']][photo.name] for r in results]))
    spacer = np.full((gap, rows[0].shape[1], 3), 255.0, np.float32)
    io.write_image(path, np.concatenate([x for r in rows for x in (r, spacer)][:-1], 0), quality=88)


def update_card(result, command):
    from .model_folder import CARD_FILE
    from .files import write_text_atomic

    path = Path(result['dir']) / CARD_FILE
    card = json.loads(path.read_text())
    s = result['summary']
    card['evaluation'] = dict(s, command=command, photo_files=[r['photo'] for r in result['rows']],
                              per_photo=[{k: r[k] for k in ('photo', 'ratio', 'style_gatys_iters', 'int8') if k in r}
                                         for r in result['rows']])
    write_text_atomic(path, json.dumps(card, indent=1) + '\n')
