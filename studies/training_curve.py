"""Quality against training time: every kept checkpoint of one or more training runs, measured
against Gatys optimization as ``mxstyle evaluate`` measures a shipped model. A quality study, not
a test.

    python studies/training_curve.py RUN [RUN ...] --photos PHOTOS [--steps 300,600] [--label NAME ...]
        [--plot FILE.png] [--markdown FILE] [--json FILE] [--compute-gatys]

Each checkpoint (``RUN/checkpoints/step-N``; keep them with ``mxstyle train --keep-checkpoints 0``)
is exported fp32 only into a temporary folder with the run's painting, and measured on the photos
(512 px, :func:`mxstyle.evaluation.evaluate_model`):

- ``style = Gatys at iteration``: the L-BFGS iteration at which Gatys optimization of the same
  photo and painting reaches the model's style loss (per photo, and the median);
- content relu4_2 as a ratio to Gatys's at the end of its 300 iterations, and to Gatys's content
  *at that iteration* (``content vs Gatys at equal style``: <= 1 means the model keeps the photo's
  objects at least as well as the optimization does when it has put on as much style);
- minutes: the sum of the run's logged step times up to the checkpoint (``log.jsonl``), the
  training's own time without start-up.

Gatys references come from the evaluation's cache (``$MXSTYLE_HOME/gatys``) or the repository's
published ones (``docs/evaluation/gatys_references.json``); photos without one are left out of the
ratios unless ``--compute-gatys`` computes them (minutes per photo).
"""
import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def parse_args(argv):
    from mxstyle.cli.options import comma_list

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="training run folders (mxstyle train --out)")
    p.add_argument("--photos", required=True, help="folder of evaluation photos")
    p.add_argument("--steps", help="only these steps, comma-separated (default: every kept checkpoint)")
    p.add_argument("--label", nargs="+", help="a name per run for the tables and the plot (default: folder names)")
    p.add_argument("--offset", nargs="+", type=int,
                   help="a step offset per run, added to its steps (a run that continues another's)")
    p.add_argument("--compute-gatys", action="store_true", help="compute missing Gatys references")
    p.add_argument("--size", type=int, default=512, help="longest side of the photos (default 512)")
    p.add_argument("--gatys-iters", type=int, default=300, help="iterations of the Gatys reference (default 300)")
    p.add_argument("--cache", help="Gatys cache folder (default $MXSTYLE_HOME/gatys)")
    p.add_argument("--vgg-weights", default="imagenet")
    p.add_argument("--plot", help="PNG: style = Gatys at iteration and content against steps")
    p.add_argument("--markdown", help="write the table here")
    p.add_argument("--json", help="write every number here")
    args = p.parse_args(argv)
    for option in ("label", "offset"):
        given = getattr(args, option)
        if given is not None and len(given) != len(args.runs):
            p.error(f"--{option} needs one value per run ({len(args.runs)})")
    args.labels = args.label or [Path(r).name for r in args.runs]
    args.offsets = args.offset or [0] * len(args.runs)
    args.step_filter = None if not args.steps else {int(s) for s in comma_list(args.steps)}
    return args


def step_seconds(run_dir):
    """``{step: seconds}`` from the run's ``log.jsonl`` ({} without one)."""
    log = Path(run_dir) / "log.jsonl"
    seconds = {}
    for line in log.read_text().splitlines() if log.is_file() else ():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut by a kill
        seconds[record["step"]] = record.get("seconds", 0.0)
    return seconds


def training_minutes(seconds, step):
    """The sum of the logged step times up to ``step``, in minutes (None without a full log)."""
    if any(s not in seconds for s in range(1, step + 1)):
        return None  # logged every few steps: the sum would not be the time
    return round(sum(seconds[s] for s in range(1, step + 1)) / 60, 1)


def measure_checkpoint(checkpoint, style, photos, options, cache, tmp):
    """``(rows, summary)``: the evaluation numbers of one checkpoint, exported fp32 into ``tmp``."""
    from mxstyle.evaluation import evaluate_model
    from mxstyle.export import export_model

    out_dir = Path(tmp) / checkpoint.name
    export_model(str(checkpoint), "curve", str(out_dir), int8=False, style_image=style, log=lambda *a, **k: None)
    result, _ = evaluate_model(str(out_dir), photos, options, cache)
    rows = []
    for r in result["rows"]:
        row = dict(photo=r["photo"], style=r["model"]["style"], content_relu4_2=r["model"]["content_relu4_2"])
        if "ratio" in r:
            row["content_relu4_2_ratio"] = r["ratio"]["content_relu4_2"]
            row["style_ratio"] = r["ratio"]["style"]
        for key in ("style_gatys_iters", "content_relu4_2_vs_equal_style"):
            if key in r:
                row[key] = r[key]
        rows.append(row)
    s = result["summary"]  # the evaluation's own summary: median iterations, geometric-mean ratios
    return rows, dict(style_gatys_iters_median=s["style_gatys_iters_median"],
                      content_relu4_2_ratio=s["content_relu4_2_ratio"],
                      content_vs_equal_style_max=s["content_relu4_2_vs_equal_style_max"])


def run_points(run_dir, label, offset, args, options, cache):
    from mxstyle.evaluation import find_photos
    from mxstyle.training import checkpoint as ckpt

    run_dir = Path(run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    style = config["options"]["style"]
    checkpoints = [(c, ckpt.read_checkpoint(c)["step"]) for c in ckpt.complete_checkpoints(run_dir)]
    checkpoints = [(c, step) for c, step in checkpoints if args.step_filter is None or step in args.step_filter]
    if not checkpoints:
        raise SystemExit(f"{run_dir}: no checkpoints to measure")
    photos = find_photos(args.photos, None)
    seconds = step_seconds(run_dir)
    points = []
    with tempfile.TemporaryDirectory() as tmp:
        for c, step in checkpoints:
            rows, summary = measure_checkpoint(c, style, photos, options, cache, tmp)
            point = dict(run=label, step=step + offset, run_step=step, minutes=training_minutes(seconds, step),
                         rows=rows, **summary)
            print(f"{label} step {point['step']}: style = Gatys at iteration {_fmt(point['style_gatys_iters_median'])}"
                  f" (median), content relu4_2 {_fmt(point['content_relu4_2_ratio'], '.2f')}x Gatys, "
                  f"{_fmt(point['content_vs_equal_style_max'], '.2f')}x Gatys at equal style (worst photo)", flush=True)
            points.append(point)
    return points


def _fmt(v, spec="g"):
    return "-" if v is None else format(v, spec)


def markdown(points):
    photos = sorted({r["photo"] for p in points for r in p["rows"] if "style_gatys_iters" in r})
    head = (["run", "step", "minutes", "style = Gatys at iteration (median)"]
            + [f"{Path(ph).stem}" for ph in photos]
            + ["content relu4_2 / Gatys", "content / Gatys at equal style (worst photo)"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for p in points:
        by_photo = {r["photo"]: r for r in p["rows"]}
        cells = [p["run"], str(p["step"]), _fmt(p["minutes"]), _fmt(p["style_gatys_iters_median"])]
        cells += [_fmt(by_photo.get(ph, {}).get("style_gatys_iters")) for ph in photos]
        cells += [_fmt(p["content_relu4_2_ratio"], ".2f") + "x", _fmt(p["content_vs_equal_style_max"], ".2f") + "x"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(points, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    for run in dict.fromkeys(p["run"] for p in points):
        mine = [p for p in points if p["run"] == run and p["style_gatys_iters_median"] is not None]
        steps = [p["step"] for p in mine]
        line, = left.plot(steps, [p["style_gatys_iters_median"] for p in mine], "o-", label=f"{run} (median)")
        for photo in sorted({r["photo"] for p in mine for r in p["rows"]}):
            ys = [next((r.get("style_gatys_iters") for r in p["rows"] if r["photo"] == photo), None) for p in mine]
            left.plot(steps, ys, ":", color=line.get_color(), alpha=0.6)
        right.plot(steps, [p["content_relu4_2_ratio"] for p in mine], "o-", color=line.get_color(),
                   label=f"{run}: / Gatys at 300")
        right.plot(steps, [p["content_vs_equal_style_max"] for p in mine], "s--", color=line.get_color(),
                   label=f"{run}: / Gatys at equal style (worst)")
    left.set_xlabel("training step")
    left.set_ylabel("style = Gatys at iteration")
    left.set_title("style (dotted: each photo)")
    right.set_xlabel("training step")
    right.set_ylabel("content relu4_2, model / Gatys")
    right.set_title("content")
    for ax in (left, right):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv=None):
    args = parse_args(argv)
    from mxstyle import files
    from mxstyle.evaluation import EvaluationOptions, GatysCache, default_references

    options = EvaluationOptions(size=args.size, gatys_iters=args.gatys_iters, vgg_weights=args.vgg_weights,
                                cached_gatys_only=not args.compute_gatys)
    cache = GatysCache(args.cache or files.mxstyle_home() / "gatys", default_references())
    for out in (args.markdown, args.json, args.plot):  # before the minutes of measuring, not after
        if out:
            Path(out).parent.mkdir(parents=True, exist_ok=True)
    points = []
    for run, label, offset in zip(args.runs, args.labels, args.offsets):
        points += run_points(run, label, offset, args, options, cache)
    table = markdown(points)
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table)
    if args.json:
        Path(args.json).write_text(json.dumps(points, indent=1))
    if args.plot:
        plot(points, args.plot)
    return points


if __name__ == "__main__":
    main()
