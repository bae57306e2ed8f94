"""Stylize photos with a shipped or exported style model.

    mxstyle stylize                                   # the sample photo, the default model
    mxstyle stylize photo.jpg more_photos/ --model night_cafe --out styled/

Inputs are files or folders (searched recursively for the formats mxstyle reads: JPEG, PNG, WebP,
BMP, TIFF, GIF, AVIF, HEIC with pillow-heif); with none, the sample photo shipped with mxstyle
(mxstyle/samples/chelsea.jpg) is used. Each result goes to OUT/STEM_styled.jpg (default OUT: out/;
a folder's subfolders are kept under OUT). A file that cannot be read or stylized gets one error
line and the rest go on; the exit status is then 1. Bad options or an unusable model exit with
status 2.
"""
import argparse
import os
import sys
import time
from pathlib import Path

from ..errors import ConfigError, MxstyleError
from ..io import READ_EXTENSIONS, WRITE_EXTENSIONS
from ..runtime.backends import BACKENDS
from ..runtime.stylizer import DEFAULT_TILE_PIXELS, DEFAULT_TILE_SIDE, DEFAULT_WORK_SIDE, PRECISIONS
from . import options

#: The photo painted when none is given (CC0; mxstyle/samples/README.md).
SAMPLE_PHOTO = Path(__file__).resolve().parents[1] / 'samples' / 'chelsea.jpg'

FORMATS = ('jpg', 'png', 'webp', 'keep')


def _work_side(text):
    """argparse type: N, or 'full' for None (Stylizer checks the range)."""
    return None if text.strip().lower() in ('full', 'none') else options.positive_int(text)


def parse_args(argv, prog=None):
    p = argparse.ArgumentParser(prog=prog, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('inputs', nargs='*', metavar='INPUT',
                   help='photo files or folders (recursive; default: the sample photo shipped with mxstyle)')
    p.add_argument('--model', default=None,
                   help='model name or model folder (default: the shipped default model; '
                        '`python -c "import mxstyle; print(mxstyle.list_models())"` lists the names)')
    p.add_argument('--out', default='out', help='output folder (default %(default)s)')
    p.add_argument('--backend', default='auto', choices=('auto',) + BACKENDS)
    p.add_argument('--precision', default='auto', choices=('auto',) + PRECISIONS)
    p.add_argument('--work-side', type=_work_side, default=DEFAULT_WORK_SIDE, metavar='N|full',
                   help='stylize photos larger than N pixels on a copy of that size, upsampled edge-aware '
                        '(default %(default)s); full: every pixel, in exact tiles')
    p.add_argument('--max-side', type=options.positive_int, default=None,
                   help='shrink each photo so its longer side is at most N pixels first')
    p.add_argument('--strength', type=options.unit_float, default=1.0,
                   help='0 = the photo, 1 = full style (default %(default)s)')
    p.add_argument('--preserve-colors', action='store_true', help="keep the photo's colours")
    p.add_argument('--threads', type=options.positive_int, default=None, help='intra-op threads')
    p.add_argument('--quality', type=options.quality, default=95, help='JPEG/WebP quality (default %(default)s)')
    p.add_argument('--suffix', default='_styled', help='added to each file stem (default %(default)s)')
    p.add_argument('--format', default='jpg', choices=FORMATS,
                   help="output format; 'keep' keeps the input's extension (default %(default)s)")
    p.add_argument('--tile-pixels', type=options.positive_int, default=DEFAULT_TILE_PIXELS,
                   help='stylize images larger than this many pixels in tiles (default %(default)s)')
    p.add_argument('--tile-side', type=options.positive_int, default=DEFAULT_TILE_SIDE,
                   help='side of a tile in pixels (default %(default)s)')
    p.add_argument('--tile-mode', default='exact', choices=('exact', 'approx'),
                   help='whole-image statistics for the tiles: exact, or from a downscaled copy')
    p.add_argument('--no-progress', action='store_true')
    return p.parse_args(argv)


def collect_inputs(inputs, out_dir):
    """``([(source path, relative output stem)], [(path, error)])`` for files and folders."""
    out_dir = Path(out_dir).resolve()
    found, missing = [], []
    for text in inputs:
        path = Path(text)
        if path.is_dir():
            files = []
            for root, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith('.')
                                 and Path(root, d).resolve() != out_dir)
                files += [Path(root, n) for n in sorted(names)
                          if n.lower().endswith(READ_EXTENSIONS) and not n.startswith('.')]
            found += [(f, f.relative_to(path).with_suffix('')) for f in files]
        elif path.exists():
            found.append((path, Path(path.stem)))
        else:
            missing.append((path, 'no such file or folder'))
    return found, missing


def plan_outputs(found, out_dir, suffix, fmt):
    """Output path of each input; names that would collide get -2, -3... appended."""
    taken, plan = set(), []
    for src, rel in found:
        ext = src.suffix.lower() if fmt == 'keep' and src.suffix.lower() in WRITE_EXTENSIONS else (
            '.jpg' if fmt == 'keep' else '.' + fmt)
        base = Path(out_dir) / rel.parent / (rel.name + suffix)
        target, n = base.with_name(base.name + ext), 2
        while str(target).lower() in taken:
            target, n = base.with_name(f'{base.name}-{n}{ext}'), n + 1
        taken.add(str(target).lower())
        plan.append((src, target))
    return plan


def main(argv=None, prog=None):
    args = parse_args(argv, prog)
    if not args.inputs:
        args.inputs = [str(SAMPLE_PHOTO)]
    found, missing = collect_inputs(args.inputs, args.out)
    if not found and not missing:
        raise ConfigError('no images found in ' + ', '.join(args.inputs)
                          + f' (looked for {" ".join(READ_EXTENSIONS)})')
    from tqdm import tqdm

    from .. import io
    from ..runtime import Stylizer

    stylizer = Stylizer(args.model, backend=args.backend, precision=args.precision, threads=args.threads,
                        work_side=args.work_side, tile_pixels=args.tile_pixels, tile_side=args.tile_side,
                        tile_mode=args.tile_mode)
    failures = list(missing)
    for path, message in missing:
        print(f'error: {path}: {message}', file=sys.stderr)
    plan = plan_outputs(found, args.out, args.suffix, args.format)
    done, written, started = 0, [], time.time()
    bar = tqdm(plan, desc=f'stylize ({stylizer.name}, {stylizer.backend} {stylizer.precision})',
               unit='img', disable=args.no_progress, file=sys.stderr)
    for src, target in bar:
        try:
            image = stylizer.stylize(src, max_side=args.max_side, strength=args.strength,
                                     preserve_colors=args.preserve_colors)
            io.write_image(target, image, quality=args.quality)
            done += 1
            written.append(target)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # one bad file must not stop the batch
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if not message.startswith(str(src)):
                message = f'{src}: {message}'
            if not isinstance(exc, (MxstyleError, OSError)):
                message += f' ({type(exc).__name__})'
            failures.append((src, message))
            tqdm.write(f'error: {message}', file=sys.stderr)
    if len(written) == 1:
        print(f'wrote {written[0]}')
    print(f'{done} stylized, {len(failures)} failed -> {args.out} '
          f'({time.time() - started:.1f} s, {stylizer.backend} {stylizer.precision})')
    return 1 if failures else 0
