"""The feed-forward training loop: ``train(TrainOptions(...))``, behind ``mxstyle train``.

One step (:func:`~.step.train_step`): a batch of photos (from worker processes) goes through the
hybridized training graph (generator + VGG perceptual loss), Adam updates the generator. Around it:
guards, a progress bar, ``log.jsonl``, checkpoints that resume exactly, previews and a loss plot.
"""
import hashlib
import json
import math
import os
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Optional, Tuple

from .. import io
from ..errors import ConfigError, ImageError
from ..files import sha256_file, write_text_atomic
from ..system import has_native_bf16
from ..values import is_integer
from ..vgg import PRECISIONS
from ..models import check_input_shape, get_model, list_models
from . import checkpoint as ckpt
from . import widen
from .graph import DEFAULT_SATURATION_WEIGHT, TRAIN_LOSS_DEFAULTS, default_train_config
from .guards import OutputGuards
from .step import build_training, train_step


#: What ``TrainOptions.precision`` may be: a loss-network precision, or "auto" (decided by the CPU).
TRAIN_PRECISIONS = ("auto",) + PRECISIONS


def _option(default, help=None, **cli):
    """A field that ``mxstyle train`` offers as an option (mxstyle.cli.options.add_dataclass_options):
    ``help`` (``%(default)s`` allowed), optionally ``flag``, ``metavar``, ``choices``, ``type``."""
    return field(default=default, metadata=dict(help=help, **cli))


def _loss_option(name):
    """A loss field: its default from :data:`~.graph.TRAIN_LOSS_DEFAULTS`; the option comes from
    mxstyle.cli.options.add_loss_options, shared with ``mxstyle optimize``."""
    return field(default=TRAIN_LOSS_DEFAULTS[name], metadata=dict(group="loss"))


@dataclass
class TrainOptions:
    """A training run's settings. Each field with ``help`` metadata is an option of ``mxstyle train``
    (``--batch-size`` for ``batch_size``) with that default, in this order; the loss fields (their
    defaults: :data:`~.graph.TRAIN_LOSS_DEFAULTS`) are its "loss" group, shared with ``optimize``."""

    style: str = field(metadata=dict(help="the painting"))
    data: str = field(metadata=dict(help="folder of training photos (searched recursively)"))
    out: str = field(metadata=dict(help="run folder for checkpoints, logs and previews"))
    arch: str = _option("johnson_s8_skip_w12_decres", "generator (default %(default)s)", choices=list_models)
    steps: int = _option(2000, "total steps of the run (default %(default)s)")
    batch_size: int = _option(4)
    image_size: int = _option(256, "training crop size (default %(default)s)")
    style_size: int = _option(512, "longest side of the style image (default %(default)s)")
    lr: float = _option(5e-4)
    lr_final: Optional[float] = _option(
        None, "decay the learning rate from --lr at step 1 to this at the last step, along a half cosine "
              "(default: none, a constant --lr); the schedule is fixed to --steps, which a resume keeps",
        metavar="LR", type=float)
    seed: int = _option(0)
    checkpoint_every: int = _option(200)
    log_every: int = _option(1)
    keep_checkpoints: int = _option(2, "checkpoints kept on disk, the newest (default %(default)s; 0: every one)",
                                    metavar="N")
    resume: bool = _option(False, "continue the run in --out")
    init_from: Optional[str] = _option(
        None, "start from the generator (and Adam state) of another run's newest checkpoint, or of a "
              "checkpoint folder: fine-tuning, e.g. with another loss", metavar="RUN")
    saturation_weight: float = _option(
        DEFAULT_SATURATION_WEIGHT, "penalty on output logits beyond tanh's working range (default %(default)s); "
                                   "see mxstyle/training/graph.py")
    precision: str = _option(
        "auto", "what the VGG loss network computes in: bfloat16 (about 1.4x faster steps; CPUs with "
                "AVX512_BF16 or AMX only), float32, or auto: bfloat16 where the CPU has it (default "
                "%(default)s; a resumed run keeps its own)", choices=TRAIN_PRECISIONS)
    workers: int = _option(2, "photo-loading processes (0: in-process)")
    preview: Optional[str] = _option(None, "photo for the previews (default: the first training photo)")
    preview_size: int = 512            # longest side of the previews (not on the command line)
    vgg_weights: str = _option("imagenet", "VGG16 .params file (default: ImageNet, cached)")
    progress: bool = _option(True, flag="--no-progress")
    content_weight: float = _loss_option("content_weight")
    style_weight: float = _loss_option("style_weight")
    tv_weight: float = _loss_option("tv_weight")
    content_layers: Tuple[str, ...] = _loss_option("content_layers")
    style_layers: Tuple[str, ...] = _loss_option("style_layers")
    style_layer_weights: Optional[Tuple[float, ...]] = _loss_option("style_layer_weights")

    def __post_init__(self):
        # Paths may come as pathlib.Path: the run's config and checkpoints record them as JSON text.
        for name in ("style", "data", "out", "init_from", "preview", "vgg_weights"):
            value = getattr(self, name)
            if isinstance(value, os.PathLike):
                setattr(self, name, os.fspath(value))

    def validate(self, generator=None):
        """Raise ConfigError for a bad option, the loss included; ``generator``: the one built for
        ``arch``, if at hand (else one is built to check ``image_size`` against)."""
        for name in ("steps", "batch_size", "image_size", "style_size", "checkpoint_every", "log_every"):
            value = getattr(self, name)
            if not (is_integer(value) and value >= 1):
                raise ConfigError(f"{name.replace('_', '-')} must be a positive integer, not {value!r}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be > 0, not {self.lr}")
        if self.lr_final is not None and not 0 < self.lr_final <= self.lr:
            raise ConfigError(f"lr-final must be > 0 and at most --lr ({self.lr}), not {self.lr_final}")
        if not self.saturation_weight >= 0:
            raise ConfigError(f"saturation-weight must be >= 0, not {self.saturation_weight}")
        if not (is_integer(self.keep_checkpoints) and self.keep_checkpoints >= 0):
            raise ConfigError(f"keep-checkpoints must be an integer >= 0, not {self.keep_checkpoints!r}")
        if self.precision not in TRAIN_PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(TRAIN_PRECISIONS)}, not {self.precision!r}")
        if self.precision == "bfloat16" and not has_native_bf16():
            # oneDNN would emulate it, several times slower than float32
            raise ConfigError("precision bfloat16 needs a CPU that computes it natively (AVX512_BF16 or AMX), "
                              "which this one does not; use float32 (or auto)")
        if self.workers < 0:
            raise ConfigError(f"workers must be >= 0, not {self.workers}")
        check_input_shape(get_model(self.arch) if generator is None else generator, self.image_size, self.image_size)
        self.loss_config()

    def lr_at(self, step):
        """The learning rate of step ``step`` (1 .. ``steps``): ``lr``, or with ``lr_final`` a half
        cosine from ``lr`` at step 1 to ``lr_final`` at the last step."""
        if self.lr_final is None or self.steps == 1:
            return self.lr
        t = min(max(step - 1, 0), self.steps - 1) / (self.steps - 1)
        return self.lr_final + (self.lr - self.lr_final) * 0.5 * (1 + math.cos(math.pi * t))

    def loss_precision(self):
        """``precision`` with "auto" decided for this CPU."""
        if self.precision == "auto":
            return "bfloat16" if has_native_bf16() else "float32"
        return self.precision

    def loss_config(self):
        return default_train_config(content_layers=self.content_layers, style_layers=self.style_layers,
                                    content_weight=self.content_weight, style_weight=self.style_weight,
                                    tv_weight=self.tv_weight, style_layer_weights=self.style_layer_weights)


# Options that must not change when a run is resumed: they define the loss trajectory.
RESUME_FIXED = ("arch", "batch_size", "image_size", "style_size", "content_weight", "style_weight",
                "tv_weight", "saturation_weight", "content_layers", "style_layers", "style_layer_weights",
                "lr", "lr_final", "seed")
# ... and with a decaying learning rate, the steps its schedule spans.
RESUME_FIXED_WITH_SCHEDULE = ("steps",)
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

    from ..data import PhotoDataset

    generator = get_model(options.arch)  # the run's one generator
    options.validate(generator)
    latest = _checkpoint_to_resume(options)
    latest_state = None if latest is None else ckpt.read_checkpoint(latest)  # read (and hashed) once
    if latest_state is not None:
        options = _resumed_precision(options, latest_state["run"])
    dataset = PhotoDataset(options.data, image_size=options.image_size, seed=options.seed)
    style_img = io.resize_max_side(io.read_image(options.style), options.style_size)
    preview = _preview_photo(options, dataset, generator.stride)
    setup = build_training(options, generator=generator, ctx=mx.cpu())
    style_grams = setup.loss.style_targets(mx.nd.array(io.to_tensor(style_img), ctx=setup.ctx))
    run_state = _run_state(options, setup, dataset)
    start = _restore(options, latest, latest_state, setup, run_state)
    if start >= options.steps:
        return TrainResult(Path(options.out), start)
    folder = _RunFolder(options, run_state, start, preview)
    return _step_loop(options, setup, style_grams, dataset, folder, start, on_alert)


def _checkpoint_to_resume(options):
    """The newest checkpoint in ``options.out`` (None: a new run); refuses one without --resume."""
    run_dir = Path(options.out)
    latest = ckpt.latest_checkpoint(run_dir)
    if latest is not None and not options.resume:
        raise ConfigError(f"{run_dir} already holds a training run (checkpoint {latest.name}); "
                          "pass --resume to continue it, or choose another --out")
    return latest


def _resumed_precision(options, run_record):
    """``options`` with "auto" precision replaced by the one the run to resume trained in (its
    checkpoint's ``run`` record; float32 for a run from before the option), so that it continues
    the same trajectory."""
    if options.precision != "auto":
        return options
    trained = run_record.get("loss_precision", "float32")
    if trained == "bfloat16" and not has_native_bf16():
        raise ConfigError(f"{options.out} trained its loss network in bfloat16, which this CPU does not compute "
                          "natively (no AVX512_BF16 or AMX); pass --precision float32 to continue it in float32 "
                          "(the trajectory then differs slightly from an uninterrupted run)")
    return replace(options, precision=trained)


def _run_state(options, setup, dataset):
    """What config.json and every checkpoint record about the run; a resume checks it."""
    return dict(options=asdict(options), loss_config=setup.loss.config.to_dict(), arch=options.arch,
                loss_precision=options.loss_precision(),
                stride=setup.generator.stride, style_sha256=sha256_file(options.style),
                data_files=len(dataset), data_digest=_files_digest(dataset.paths))


def _restore(options, latest, latest_state, setup, run_state):
    """Load the generator and Adam from checkpoint ``latest`` (its state already read: a resume,
    checked to continue the same run) or from --init-from; returns the step the run continues from."""
    if latest is None:
        if options.init_from:
            run_state["init_from"] = _init_from(options, setup.generator, setup.trainer, setup.ctx)
        return 0
    state = ckpt.load_checkpoint(latest, setup.generator, setup.trainer, ctx=setup.ctx, state=latest_state)
    if "init_from" in state["run"]:
        run_state["init_from"] = state["run"]["init_from"]
    old = dict(LEGACY_OPTIONS, **state["run"]["options"])
    fixed = RESUME_FIXED + (RESUME_FIXED_WITH_SCHEDULE if options.lr_final is not None else ())
    changed = [k for k in fixed if _norm(old.get(k)) != _norm(getattr(options, k))]
    if changed:
        raise ConfigError("cannot resume with different " + ", ".join(
            f"--{k.replace('_', '-')} ({old.get(k)} in the checkpoint, {getattr(options, k)} now)"
            for k in changed))
    if state["run"]["data_digest"] != run_state["data_digest"]:
        raise ConfigError(f"the training photos in {options.data} differ from the checkpoint's "
                          f"({state['run']['data_files']} files then, {run_state['data_files']} now); resume "
                          "needs the same photos to continue the same trajectory")
    if state["run"]["style_sha256"] != run_state["style_sha256"]:
        raise ConfigError(f"the style image {options.style} differs from the one the checkpoint was trained on")
    return state["step"]


class _RunFolder:
    """What a run writes into ``options.out``: config.json, log.jsonl, checkpoints, previews, loss.png.
    Opened (``with``), it appends to log.jsonl."""

    def __init__(self, options, run_state, start, preview):
        """Create the folder, write config.json, cut log.jsonl back to ``start`` (the steps after
        the checkpoint are run again)."""
        self.options, self.run_state, self.preview = options, run_state, preview
        self.dir = Path(options.out)
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "previews").mkdir(exist_ok=True)
        write_text_atomic(self.dir / "config.json", json.dumps(run_state, indent=1, default=str))
        self.log_path = self.dir / "log.jsonl"
        self.history = _read_log(self.log_path, start)
        self.log_path.write_text("".join(json.dumps(r) + "\n" for r in self.history))
        self._log = None

    def __enter__(self):
        self._log = open(self.log_path, "a")
        return self

    def __exit__(self, *exc):
        self._log.close()

    def log(self, record):
        """Append a step's record to log.jsonl and the history that loss.png plots."""
        self.history.append(record)
        self._log.write(json.dumps(record) + "\n")
        self._log.flush()

    def save(self, step, setup):
        """Checkpoint ``step``, stylize the preview photo, redraw loss.png."""
        import mxnet as mx

        from ..plot import plot_losses

        ckpt.save_checkpoint(self.dir, step, setup.generator, setup.trainer, dict(run=self.run_state),
                             keep=self.options.keep_checkpoints)
        out = setup.generator(mx.nd.array(io.to_tensor(self.preview), ctx=setup.ctx))
        io.write_image(self.dir / "previews" / f"step-{step:06d}.jpg", io.from_tensor(out), quality=90)
        if self.history:
            plot_losses(self.history, self.dir / "loss.png", "step",
                        title=f"{self.options.arch} on {Path(self.options.style).name}")


def _step_loop(options, setup, style_grams, dataset, folder, start, on_alert):
    """Steps ``start + 1`` to ``options.steps``: a batch, :func:`~.step.train_step`, the guards, the
    log, checkpoints; returns the :class:`TrainResult`."""
    import mxnet as mx

    from ..data import BatchLoader

    guards, alerts, last, step = OutputGuards(), [], {}, start
    bar = None
    if options.progress:
        from tqdm import tqdm
        bar = tqdm(total=options.steps, initial=start, desc=f"train {options.arch}", unit="step",
                   dynamic_ncols=True)

    def report(alert):
        alerts.append(alert)
        if on_alert is not None:
            on_alert(alert)
        elif bar is not None:
            bar.write(f"warning: {alert.message}")
        else:
            warnings.warn(alert.message, RuntimeWarning, stacklevel=4)  # at train()'s caller

    try:
        with BatchLoader(dataset, options.batch_size, start_step=start, workers=options.workers) as loader, folder:
            for data_step, batch in loader:
                t0 = time.perf_counter()
                mx.random.seed(_step_seed(options.seed, data_step))
                step = data_step + 1
                if options.lr_final is not None:
                    setup.trainer.set_learning_rate(options.lr_at(step))
                terms, stylized = train_step(setup.graph, setup.trainer, mx.nd.array(batch, ctx=setup.ctx),
                                             style_grams, step=step)
                seconds = time.perf_counter() - t0
                for alert in guards.check(step, batch, stylized.asnumpy()):
                    report(alert)
                last = dict(step=step, **terms, seconds=round(seconds, 4))
                if options.lr_final is not None:
                    last["lr"] = setup.trainer.learning_rate
                if step % options.log_every == 0 or step == options.steps:
                    folder.log(last)
                if bar is not None:
                    bar.set_postfix(loss=f"{terms['loss']:.4g}", s_step=f"{seconds:.2f}")
                    bar.update(1)
                if step % options.checkpoint_every == 0 or step == options.steps:
                    folder.save(step, setup)
                if step >= options.steps:
                    break
    finally:
        if bar is not None:
            bar.close()
    return TrainResult(folder.dir, step, last, alerts)


def _init_from(options, generator, trainer, ctx):
    """Load the generator and Adam's moments from ``options.init_from`` (a run folder: its newest
    checkpoint; or one checkpoint folder) to fine-tune from them, at ``options.lr``; returns what
    the run records about it. Why the moments come along: docs/training.md."""
    source = Path(options.init_from)
    folder = ckpt.latest_checkpoint(source) if (source / "checkpoints").is_dir() else source
    if folder is None or not (folder / ckpt.STATE_FILE).is_file():
        raise ConfigError(f"--init-from {source}: not a training run or checkpoint folder")
    state = ckpt.read_checkpoint(folder)
    arch = state["run"]["arch"]
    shapes = None if arch == options.arch else (_parameter_shapes(arch), _parameter_shapes(options.arch))
    widened = shapes is not None and shapes[0] != shapes[1]
    if widened and not widen.is_widening(*shapes):
        raise ConfigError(f"--init-from {source} holds a {arch} generator, not {options.arch} (nor one with "
                          "the same parameters, nor a smaller one of its family)")
    if widened:
        _init_widened(folder, arch, generator, trainer, ctx)
    else:
        ckpt.load_checkpoint(folder, generator, trainer, ctx=ctx, state=state)
    trainer.set_learning_rate(options.lr)  # the loaded optimizer state carries the source run's
    changed = _loss_changes(state["run"], options)
    if changed:
        warnings.warn(
            f"--init-from {source}: the loss differs from the one that run trained on ({', '.join(changed)}). "
            "Adam's moments were estimated for that loss, so the first updates can be many times --lr "
            "(docs/training.md); for a new objective start a new run", RuntimeWarning, stacklevel=4)
    return dict(checkpoint=str(folder.resolve()), step=state["step"], arch=arch,
                generator_sha256=state["files"][ckpt.GENERATOR_FILE], loss_changes=changed,
                lineage=ckpt.lineage(folder, state), **({"widened_to": options.arch} if widened else {}))


def _init_widened(folder, arch, generator, trainer, ctx):
    """Load checkpoint ``folder`` of the narrower ``arch`` into the wider, initialized ``generator``
    and its ``trainer`` (:mod:`.widen`), and check that the output is the trained network's."""
    import tempfile

    import mxnet as mx
    import numpy as np

    from ..models import get_model

    source = get_model(arch)
    source.load_parameters(str(folder / ckpt.GENERATOR_FILE), ctx=ctx)
    widen.widen_generator(source, generator)
    with tempfile.TemporaryDirectory() as tmp:
        states = Path(tmp) / ckpt.TRAINER_FILE
        states.write_bytes(widen.widen_trainer_states(folder / ckpt.TRAINER_FILE, widen.trainer_order(source),
                                                      widen.structural_names(generator, trainer._params),
                                                      trainer._params))
        trainer.load_states(str(states))
    side = 2 * getattr(generator, 'min_size', 32)
    x = mx.nd.array(np.random.RandomState(0).uniform(0, 255, (1, 3, side, side)), ctx=ctx)
    gap = float(mx.nd.abs(source(x) - generator(x)).max().asscalar())
    if gap > 1e-2:  # float32 sums in another order: far below a grey level of 255
        raise ConfigError(f"widening {arch} to {getattr(generator, 'arch', 'the generator')} changed the output "
                          f"(by up to {gap:.3g} of 255): the two are not one family")


def _parameter_shapes(arch):
    """``{structural name: shape}`` of an architecture's parameters: two architectures with the
    same ones (``johnson_s8`` and ``johnson_s8_skip``) can start from each other's weights."""
    from ..models import get_model

    return {name: p.shape for name, p in get_model(arch)._collect_params_with_prefix().items()}


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
    if is_integer(value):
        return float(value)
    return value
