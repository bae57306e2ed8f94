"""The feed-forward training loop: ``train(TrainOptions(...))``, behind ``tools/train.py``.

One step: a batch of photos (from worker processes) goes through the hybridized training graph
(generator + VGG perceptual loss), Adam updates the generator. Around it: guards, a progress
bar, ``log.jsonl``, checkpoints that resume exactly, previews and a loss plot.
"""
import hashlib
import json
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Tuple


from .. import io
from ..errors import ConfigError, ImageError
from ..files import sha256_file, write_text_atomic
from . import checkpoint as ckpt
from .guards import OutputGuards, check_finite
from .graph import DEFAULT_SATURATION_WEIGHT, TRAIN_CONTENT_LAYERS, TRAIN_STYLE_LAYERS, default_train_config


@dataclass
class TrainOptions:
    style: str
    data: str
    out: str
    arch: str = "johnson"
    steps: int = 2000
    batch_size: int = 4
    image_size: int = 256
    style_size: int = 512              # longest side of the style image
    content_weight: float = 1.0
    style_weight: float = 3.0
    tv_weight: float = 10.0
    saturation_weight: float = DEFAULT_SATURATION_WEIGHT  # mxstyle.training.graph: keeps tanh's gradient alive
    content_layers: Tuple[str, ...] = TRAIN_CONTENT_LAYERS
    style_layers: Tuple[str, ...] = TRAIN_STYLE_LAYERS
    style_layer_weights: Optional[Tuple[float, ...]] = None
    lr: float = 1e-3
    seed: int = 0
    checkpoint_every: int = 200
    log_every: int = 1
    resume: bool = False
    init_from: Optional[str] = None    # a run folder or checkpoint folder: start from its generator
    workers: int = 2
    preview: Optional[str] = None      # photo for the previews (default: the first training photo)
    preview_size: int = 512
    vgg_weights: str = "imagenet"
    progress: bool = True
    keep_checkpoints: int = 2  # the newest N checkpoints stay on disk; 0 keeps every one

    def validate(self):
        for name in ("steps", "batch_size", "image_size", "style_size", "checkpoint_every", "log_every"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise ConfigError(f"{name.replace('_', '-')} must be a positive integer, not {value!r}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be > 0, not {self.lr}")
        if not self.saturation_weight >= 0:
            raise ConfigError(f"saturation-weight must be >= 0, not {self.saturation_weight}")
        if not (isinstance(self.keep_checkpoints, int) and self.keep_checkpoints >= 0):
            raise ConfigError(f"keep-checkpoints must be an integer >= 0, not {self.keep_checkpoints!r}")
        if self.workers < 0:
            raise ConfigError(f"workers must be >= 0, not {self.workers}")
        from ..models import get_model, check_input_shape

        check_input_shape(get_model(self.arch), self.image_size, self.image_size)

    def loss_config(self):
        return default_train_config(content_layers=self.content_layers, style_layers=self.style_layers,
                                    content_weight=self.content_weight, style_weight=self.style_weight,
                                    tv_weight=self.tv_weight, style_layer_weights=self.style_layer_weights)


# Options that must not change when a run is resumed: they define the loss trajectory.
RESUME_FIXED = ("arch", "batch_size", "image_size", "style_size", "content_weight", "style_weight",
                "tv_weight", "saturation_weight", "content_layers", "style_layers", "style_layer_weights",
                "lr", "seed")
# What a checkpoint written before an option existed was trained with.
LEGACY_OPTIONS = dict(saturation_weight=0.0)


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    last: dict = field(default_factory=dict)
    alerts: list = field(default_factory=list)


def _files_digest(paths):
    return hashlib.sha256("\n".join(str(p) for p in paths).encode()).hexdigest()[:16]


def _step_seed(seed, step):
    # MXNet's RNG has no get/set state: reseeding from (seed, step) makes any random op in a
    # generator (e.g. texture_net's noise) a pure function of the step, so resume is exact.
    return (seed * 1_000_003 + step) % (2 ** 31)


def _read_log(path, upto):
    """Log records with step <= upto (a resumed run rewrites what came after its checkpoint)."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut by a kill
        if record.get("step", 0) <= upto:
            records.append(record)
    return records


def _preview_photo(options, dataset, stride):
    """The photo stylized at each checkpoint: --preview, else the first readable training photo."""
    if options.preview:
        img = io.read_image(options.preview)
    else:
        for path in dataset.paths:
            try:
                img = io.read_image(path)
                break
            except ImageError:
                continue  # the data loader warns about it when it meets it
        else:
            raise ConfigError(f"none of the photos in {options.data} can be read")
    img = io.resize_max_side(img, options.preview_size)
    h, w = (img.shape[0] // stride) * stride, (img.shape[1] // stride) * stride
    return img[:h, :w]


def train(options, *, on_alert=None):
    """Train a style network as ``options`` says; returns a :class:`TrainResult`.

    Raises ConfigError for bad options, DivergedError when the loss becomes NaN/Inf.
    """
    import mxnet as mx
    from mxnet import autograd, gluon

    from ..data import BatchLoader, PhotoDataset
    from ..models import get_model
    from ..plot import plot_losses
    from .graph import build_training_graph

    options.validate()
    config = options.loss_config()
    run_dir = Path(options.out)
    latest = ckpt.latest_checkpoint(run_dir)
    if latest is not None and not options.resume:
        raise ConfigError(f"{run_dir} already holds a training run (checkpoint {latest.name}); "
                          "pass --resume to continue it, or choose another --out")
    dataset = PhotoDataset(options.data, image_size=options.image_size, seed=options.seed)
    style_img = io.resize_max_side(io.read_image(options.style), options.style_size)
    preview = _preview_photo(options, dataset, get_model(options.arch).stride)

    ctx = mx.cpu()
    mx.random.seed(options.seed)
    generator = get_model(options.arch)
    generator.initialize(mx.init.Xavier(magnitude=2.0), ctx=ctx)
    graph, loss = build_training_graph(generator, config, vgg_weights=options.vgg_weights, ctx=ctx,
                                       saturation_weight=options.saturation_weight)
    trainer = gluon.Trainer(generator.collect_params(), "adam", {"learning_rate": options.lr})
    style_grams = loss.style_targets(mx.nd.array(io.to_tensor(style_img), ctx=ctx))

    run_state = dict(options=asdict(options), loss_config=config.to_dict(), arch=options.arch,
                     stride=generator.stride, style_sha256=sha256_file(options.style),
                     data_files=len(dataset), data_digest=_files_digest(dataset.paths))
    start = 0
    if latest is None and options.init_from:
        run_state["init_from"] = _init_from(options, generator, trainer, ctx)
    if latest is not None:
        state = ckpt.load_checkpoint(latest, generator, trainer, ctx=ctx)
        if "init_from" in state["run"]:
            run_state["init_from"] = state["run"]["init_from"]
        old = dict(LEGACY_OPTIONS, **state["run"]["options"])
        changed = [k for k in RESUME_FIXED if _norm(old.get(k)) != _norm(getattr(options, k))]
        if changed:
            raise ConfigError("cannot resume with different " + ", ".join(
                f"--{k.replace('_', '-')} ({old.get(k)} in the checkpoint, {getattr(options, k)} now)"
                for k in changed))
        if state["run"]["data_digest"] != run_state["data_digest"]:
            raise ConfigError(f"the training photos in {options.data} differ from the checkpoint's "
                              f"({state['run']['data_files']} files then, {len(dataset)} now); resume "
                              "needs the same photos to continue the same trajectory")
        if state["run"]["style_sha256"] != run_state["style_sha256"]:
            raise ConfigError(f"the style image {options.style} differs from the one the checkpoint was trained on")
        start = state["step"]
    if start >= options.steps:
        return TrainResult(run_dir, start)

    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "previews").mkdir(exist_ok=True)
    write_text_atomic(run_dir / "config.json", json.dumps(run_state, indent=1, default=str))
    log_path = run_dir / "log.jsonl"
    history = _read_log(log_path, start)
    log_path.write_text("".join(json.dumps(r) + "\n" for r in history))  # drop steps after the checkpoint

    guards = OutputGuards()
    alerts = []

    def report(alert):
        alerts.append(alert)
        if on_alert is not None:
            on_alert(alert)
        elif bar is not None:
            bar.write(f"warning: {alert.message}")
        else:
            warnings.warn(alert.message, RuntimeWarning, stacklevel=3)

    def save(step):
        ckpt.save_checkpoint(run_dir, step, generator, trainer, dict(run=run_state),
                             keep=options.keep_checkpoints)
        out = generator(mx.nd.array(io.to_tensor(preview), ctx=ctx))
        io.write_image(run_dir / "previews" / f"step-{step:06d}.jpg", io.from_tensor(out), quality=90)
        if history:
            plot_losses(history, run_dir / "loss.png", "step", title=f"{options.arch} on {Path(options.style).name}")

    bar = None
    if options.progress:
        from tqdm import tqdm
        bar = tqdm(total=options.steps, initial=start, desc=f"train {options.arch}", unit="step",
                   dynamic_ncols=True)
    last = {}
    step = start
    try:
        with BatchLoader(dataset, options.batch_size, start_step=start, workers=options.workers) as loader, \
                open(log_path, "a") as log:
            for data_step, batch in loader:
                t0 = time.perf_counter()
                mx.random.seed(_step_seed(options.seed, data_step))
                photos = mx.nd.array(batch, ctx=ctx)
                with autograd.record():
                    total, content, style, tv, saturation, stylized = graph(photos, *style_grams)
                total.backward()
                terms = dict(loss=float(total.asscalar()), content=float(content.asscalar()),
                             style=float(style.asscalar()), tv=float(tv.asscalar()),
                             saturation=float(saturation.asscalar()))
                step = data_step + 1
                check_finite(step, terms)  # before the update: the weights stay good
                trainer.step(1)
                mx.nd.waitall()
                seconds = time.perf_counter() - t0
                for alert in guards.check(step, batch, stylized.asnumpy()):
                    report(alert)
                last = dict(step=step, **terms, seconds=round(seconds, 4))
                if step % options.log_every == 0 or step == options.steps:
                    history.append(last)
                    log.write(json.dumps(last) + "\n")
                    log.flush()
                if bar is not None:
                    bar.set_postfix(loss=f"{terms['loss']:.4g}", s_step=f"{seconds:.2f}")
                    bar.update(1)
                if step % options.checkpoint_every == 0 or step == options.steps:
                    save(step)
                if step >= options.steps:
                    break
    finally:
        if bar is not None:
            bar.close()
    return TrainResult(run_dir, step, last, alerts)


def _init_from(options, generator, trainer, ctx):
    """Load the generator and Adam's moments from ``options.init_from`` (a run folder: its newest
    checkpoint; or one checkpoint folder) to fine-tune from them, at ``options.lr``; returns what
    the run records about it.

    Adam's moments come along because a fresh Adam's first update moves every weight by the full
    learning rate (m/sqrt(v) = sign(g)): measured on the 550-step ``langlois`` johnson at lr 1e-3,
    that first step raised the style loss from 3.2e4 to 5.3e6.
    """
    source = Path(options.init_from)
    folder = ckpt.latest_checkpoint(source) if (source / "checkpoints").is_dir() else source
    if folder is None or not (folder / ckpt.STATE_FILE).is_file():
        raise ConfigError(f"--init-from {source}: not a training run or checkpoint folder")
    state = ckpt.read_checkpoint(folder)
    arch = state["run"]["arch"]
    if arch != options.arch:
        raise ConfigError(f"--init-from {source} holds a {arch} generator, not {options.arch}")
    ckpt.load_checkpoint(folder, generator, trainer, ctx=ctx, state=state)
    trainer.set_learning_rate(options.lr)  # the loaded optimizer state carries the source run's
    changed = _loss_changes(state["run"], options)
    if changed:
        warnings.warn(
            f"--init-from {source}: the loss differs from the one that run trained on ({', '.join(changed)}). "
            "Adam's moments were estimated for that loss, so the first updates can be many times --lr "
            "(measured: switching langlois to the Gatys objective raised its style loss 10x in 17 steps); "
            "for a new objective start a new run", RuntimeWarning, stacklevel=3)
    return dict(checkpoint=str(folder.resolve()), step=state["step"],
                generator_sha256=state["files"][ckpt.GENERATOR_FILE], loss_changes=changed)


def _loss_changes(source_run, options):
    """``"name: old -> new"`` for every loss setting of ``options`` that differs from the run state
    ``source_run`` (a checkpoint's ``run`` record)."""
    old = dict(source_run["loss_config"], saturation_weight=dict(LEGACY_OPTIONS, **source_run["options"])[
        "saturation_weight"])
    new = dict(options.loss_config().to_dict(), saturation_weight=options.saturation_weight)
    return [f"{k}: {old.get(k)} -> {new[k]}" for k in sorted(new) if _norm(old.get(k)) != _norm(new[k])]


def _norm(value):
    """Compare options across JSON: tuples and lists are the same, ints and floats too."""
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value
