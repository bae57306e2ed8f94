"""Training checkpoints that survive a kill at any moment and resume exactly.

Layout of a run folder::

    RUN_DIR/checkpoints/step-000400/generator.params   the generator's weights
                                    trainer.states     Adam's moments and update counts
                                    state.json         step, options, random state, sha256 of both files
    RUN_DIR/checkpoints/latest                         name of the newest complete checkpoint

A checkpoint is written into a hidden temporary folder, flushed, and renamed into place; only
then is ``latest`` replaced (write-then-rename again). A kill leaves either the previous
checkpoint or the new one, never a half-written one that ``latest`` points to.
"""
import json
import os
import shutil
from pathlib import Path

from ..errors import MxstyleError
from ..files import rename_into_place, sha256_file, write_text_atomic

STATE_FILE = "state.json"
GENERATOR_FILE = "generator.params"
TRAINER_FILE = "trainer.states"


class CheckpointError(MxstyleError):
    """A checkpoint is missing, incomplete or does not match its recorded checksums."""


def checkpoint_dir(run_dir):
    return Path(run_dir) / "checkpoints"


def save_checkpoint(run_dir, step, generator, trainer, state, keep=2):
    """Write checkpoint ``step`` atomically; keep the newest ``keep`` ones (0: keep every one).
    Returns its folder."""
    root = checkpoint_dir(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    name = f"step-{step:06d}"
    tmp = root / f".tmp-{name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    generator.save_parameters(str(tmp / GENERATOR_FILE))
    trainer.save_states(str(tmp / TRAINER_FILE))
    record = dict(state, step=step, files={f: sha256_file(tmp / f) for f in (GENERATOR_FILE, TRAINER_FILE)})
    (tmp / STATE_FILE).write_text(json.dumps(record, indent=1))
    final = root / name
    rename_into_place(tmp, final)  # the same step saved again (a resumed run) replaces the old one
    write_text_atomic(root / "latest", name + "\n")
    for old in complete_checkpoints(run_dir)[:-keep] if keep > 0 else ():
        shutil.rmtree(old, ignore_errors=True)
    return final


def complete_checkpoints(run_dir):
    """Complete checkpoint folders, oldest first (temporary leftovers are ignored)."""
    root = checkpoint_dir(run_dir)
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob("step-*") if (p / STATE_FILE).is_file())


def read_checkpoint(path):
    """The state dict of a checkpoint folder, after checking its files against their sha256."""
    path = Path(path)
    try:
        state = json.loads((path / STATE_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path} has no readable {STATE_FILE}: {exc}") from exc
    for name, expected in state.get("files", {}).items():
        f = path / name
        if not f.is_file():
            raise CheckpointError(f"checkpoint {path} lacks {name}")
        if sha256_file(f) != expected:
            raise CheckpointError(f"checkpoint file {f} does not match its recorded sha256 (corrupt or modified)")
    return state


def latest_checkpoint(run_dir):
    """The newest complete checkpoint of a run: its folder, or None when the run has none."""
    root = checkpoint_dir(run_dir)
    pointer = root / "latest"
    if pointer.is_file():
        candidate = root / pointer.read_text().strip()
        if (candidate / STATE_FILE).is_file():
            return candidate
    complete = complete_checkpoints(run_dir)  # pointer lost: fall back to the newest complete one
    return complete[-1] if complete else None


def load_checkpoint(path, generator, trainer=None, ctx=None, state=None):
    """Load weights (and optimizer states) from a checkpoint folder; returns its state dict.

    ``state``: the folder's ``read_checkpoint`` result when the caller already has it (the files
    are then not hashed a second time)."""
    state = read_checkpoint(path) if state is None else state
    path = Path(path)
    generator.load_parameters(str(path / GENERATOR_FILE), ctx=ctx)
    if trainer is not None:
        trainer.load_states(str(path / TRAINER_FILE))
    return state


def _leg(run_name, run_record, steps):
    """One leg of a lineage: the run, its generator, its loss, lr (and its decay, if any) and
    loss-network precision (float32 before the option existed), and the steps it gave."""
    loss = run_record.get("loss_config") or {}
    options = run_record.get("options") or {}
    leg = dict(run=run_name, arch=run_record.get("arch"), steps=steps, lr=options.get("lr"),
               content=[loss.get("content_weight"), list(loss.get("content_layers") or [])],
               style=[loss.get("style_weight"), list(loss.get("style_layers") or [])],
               precision=run_record.get("loss_precision", "float32"))
    if options.get("lr_final") is not None:  # a decaying lr: to lr_final over the leg's planned steps
        leg["lr_schedule"] = dict(final=options["lr_final"], over_steps=options.get("steps"))
    return leg


def lineage(checkpoint, state=None):
    """The legs of training that led to ``checkpoint``, oldest first: ``[{run, arch, steps, lr,
    content, style, precision}]`` (content, style: ``[weight, layers]``); ``steps`` is what each leg gave
    before the next started from it.

    A run started with ``--init-from`` records its source's lineage; for a source recorded before
    that, the walk goes on through the ancestors' ``config.json`` while they are on disk. Where the
    record ends, the last leg is ``{run, arch, steps, "record": "not found"}``: the lineage is then
    incomplete at its start."""
    checkpoint = Path(checkpoint)
    state = read_checkpoint(checkpoint) if state is None else state
    legs, seen = [], {checkpoint.parent.parent.resolve()}
    run_name, run_record, steps = checkpoint.parent.parent.name, state["run"], state["step"]
    while True:
        legs.append(_leg(run_name, run_record, steps))
        parent = run_record.get("init_from")
        if not parent:
            break  # trained from scratch: the lineage is complete
        if parent.get("lineage") is not None:
            # legs recorded before the precision option were trained in float32
            legs.extend(leg if "record" in leg else dict(leg, precision=leg.get("precision", "float32"))
                        for leg in reversed(parent["lineage"]))
            break
        parent_dir = Path(parent["checkpoint"]).parent.parent
        try:
            record = json.loads((parent_dir / "config.json").read_text())
        except (OSError, ValueError):
            record = None
        # the folder may since hold another run (of another generator, or shorter than the step)
        if record is None or record.get("arch") != parent.get("arch", record.get("arch")) or \
                (record.get("options") or {}).get("steps", 0) < parent["step"] or parent_dir.resolve() in seen:
            legs.append(dict(run=parent_dir.name, arch=parent.get("arch"), steps=parent["step"], record="not found"))
            break
        seen.add(parent_dir.resolve())  # a folder seen twice would be a loop: it ends the walk
        run_name, run_record, steps = parent_dir.name, record, parent["step"]
    return list(reversed(legs))

