"""``mxstyle evaluate``: measure the quality of style models against Gatys optimization.

    mxstyle evaluate --model langlois --photos PHOTO_DIR
    mxstyle evaluate --photos PHOTO_DIR --update-card \\
        --json docs/evaluation/results.json --markdown docs/evaluation/tables.md \\
        --contact-sheet docs/images/contact_sheet.jpg

(``python tools/evaluate.py`` is the same command.) What is measured: :mod:`mxstyle.evaluation`.
``--cached-gatys-only`` computes no Gatys reference and gives ratios only for the photos that
already have one, to redo tables and contact sheets without those minutes. ``--update-card``
writes the summary into each model's ``model.json``; the contact sheet shows every photo in every
style. ``--update-docs FILE`` rewrites the summary table between the evaluate.py markers of a
Markdown file, so the README's numbers are this tool's output: the rows of the models evaluated
now are replaced, the other models' rows stay as they were; ``--json`` keeps the other models'
results the same way, and ``--markdown`` renders every model the JSON holds. Gatys references come
from the cache, else from the published ones (``--references``; a checkout's
``docs/evaluation/gatys_references.json``), to which ``--publish-gatys`` adds this run's.
"""
import argparse
import json
import sys
from pathlib import Path

from ..errors import ConfigError


def parse_args(argv, prog=None):
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--model', nargs='+', default=None, help='model names or folders (default: every shipped model)')
    p.add_argument('--photos', required=True, help='folder of photos (searched recursively)')
    p.add_argument('--limit', type=int, default=None, help='use only the first N photos (sorted by name)')
    p.add_argument('--size', type=int, default=512, help='longest side of the photos (default 512)')
    p.add_argument('--gatys-iters', type=int, default=300, help='L-BFGS iterations of the reference (default 300)')
    p.add_argument('--no-gatys', action='store_true', help='only the models\' own losses, no reference')
    p.add_argument('--cached-gatys-only', action='store_true',
                   help='compute no Gatys reference: use those already cached (photos without one get no ratio)')
    p.add_argument('--gatys-curves', action='store_true',
                   help='recompute cached Gatys references that have no loss curve (older cache entries)')
    p.add_argument('--vgg-weights', default='imagenet',
                   help='a VGG16 .params file (default: the cached ImageNet weights, fetched on first use)')
    p.add_argument('--cache', default=None, help='Gatys cache folder (default $MXSTYLE_HOME/gatys)')
    p.add_argument('--references', default=None, metavar='FILE',
                   help='published Gatys references (loss curves) to use where the cache has none; '
                        '"none" for no file (default: docs/evaluation/gatys_references.json in a checkout)')
    p.add_argument('--publish-gatys', action='store_true',
                   help='add every Gatys reference this run uses to the --references file')
    p.add_argument('--json', metavar='FILE',
                   help='all numbers, per photo, with the command that measured them (the results of '
                        'other models already in the file are kept)')
    p.add_argument('--markdown', metavar='FILE',
                   help='the tables as Markdown: the models of the --json file, else of this run')
    p.add_argument('--contact-sheet', metavar='FILE', help='photos x styles image (.jpg or .png)')
    p.add_argument('--update-card', action='store_true', help="write the summary into each model's model.json")
    p.add_argument('--update-docs', nargs='+', metavar='FILE', default=[],
                   help='rewrite the summary table between the evaluate.py markers of these Markdown files '
                        '(the rows of this run\'s models are replaced, other models\' rows kept)')
    args = p.parse_args(argv)
    return args


def _write(path, option, text):
    from ..files import write_text_atomic

    try:
        write_text_atomic(path, text)
    except OSError as e:
        raise ConfigError(f'{option} {path}: cannot write it ({e.strerror or e})') from None


def _title(result):
    from .. import evaluation as ev

    s = result['summary']
    title = f'{result["name"]} ({result["arch"]}, {s["backend"]}), {s["photos"]} photos at {s["size"]} px'
    if not s['gatys_photos']:
        return title + ': the model\'s losses only (no Gatys reference)'
    if s['gatys_photos'] < s['photos']:
        title += f' (Gatys reference on {s["gatys_photos"]} of them)'
    return title + (f', model / Gatys ({s["gatys_iters"]} L-BFGS iterations); goal (each ratio <= '
                    f'{ev.GOAL_RATIO}, int8 >= {ev.GOAL_PSNR:.0f} dB): {"met" if s["goal_met"] else "not met"}')


def _markdown(results):
    """tables.md: the summary, then each model's table under the command that measured it."""
    from .. import evaluation as ev

    parts = ['**summary**', '', ev.markdown(ev.summary_table(results)), '']
    for r in results:
        parts += [f'**{_title(r)}**', '', f'*{r.get("command", "command not recorded")}*', '',
                  ev.markdown(ev.model_table(r)), '']
    return '\n'.join(parts)


def _previous_results(path):
    """The results an earlier run wrote to the --json file (none if it is absent)."""
    path = Path(path)
    if not path.is_file():
        return []
    try:
        return list(json.loads(path.read_text())['results'])
    except (ValueError, OSError, KeyError, TypeError) as e:
        raise ConfigError(f'--json {path}: holds no earlier results this run could keep ({e}); '
                          'move it away to start a new file') from None


def main(argv=None, prog=None):
    args = parse_args(argv, prog)
    from .. import evaluation as ev
    from .. import files
    from ..files import write_text_atomic
    from ..runtime import list_available_models

    options = ev.EvaluationOptions(size=args.size, gatys_iters=args.gatys_iters, no_gatys=args.no_gatys,
                                   cached_gatys_only=args.cached_gatys_only, gatys_curves=args.gatys_curves,
                                   vgg_weights=args.vgg_weights, publish_gatys=args.publish_gatys)
    references = ev.default_references() if args.references is None else (
        None if args.references.lower() == 'none' else Path(args.references))
    if args.publish_gatys and references is None:
        raise ConfigError('--publish-gatys needs a references file: give --references FILE')
    models = args.model or list_available_models()
    if not models:
        raise ConfigError('no models to evaluate: export one (mxstyle export) or give --model')
    photos = ev.find_photos(args.photos, args.limit)
    for doc in args.update_docs:  # checked before the minutes of evaluation
        ev.summary_block(doc)
    previous = _previous_results(args.json) if args.json else []
    cache = ev.GatysCache(args.cache or files.mxstyle_home() / 'gatys', references)
    command = 'mxstyle evaluate ' + ' '.join(argv if argv is not None else sys.argv[1:])
    results, all_images = [], {}
    for model in models:
        result, images = ev.evaluate_model(model, photos, options, cache)
        result['command'] = command
        results.append(result)
        all_images[result['name']] = images
        print('\n' + _title(result) + '\n' + ev.text(ev.model_table(result)))
        if args.update_card:
            ev.update_card(result, command)
    summary_rows = ev.summary_table(results)
    if len(results) > 1:
        print('\nsummary\n' + ev.text(summary_rows))
    # the --json file keeps the other models' results, as --update-docs keeps their rows, and
    # --markdown shows what it holds
    kept = ev.merge_results(previous, results)
    if args.json:
        _write(args.json, '--json', json.dumps(dict(command=command, results=kept), indent=1))
    if args.markdown:
        _write(args.markdown, '--markdown', _markdown(kept))
    for doc in args.update_docs:
        write_text_atomic(doc, ev.summary_block(doc, summary_rows))
        print(f'summary table written into {doc}')
    if args.contact_sheet:
        ev.contact_sheet(photos, results, all_images, args.contact_sheet)
        print(f'contact sheet: {args.contact_sheet}')
    return 0
