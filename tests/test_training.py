"""Feed-forward training: exact resume, logs, guards, crash-safe checkpoints, the CLI."""
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest
from mxnet.gluon import HybridBlock

from mxstyle import ConfigError, io
from mxstyle.models import get_model, registry
from mxstyle.training import DivergedError, TrainOptions, checkpoint as ckpt, train
from mxstyle.system import has_native_bf16
from mxstyle.training.guards import OutputGuards, check_finite

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    rng = np.random.RandomState(0)
    for i in range(6):
        y, x = np.mgrid[0:40, 0:48]
        img = np.stack([128 + 90 * np.sin(x / (3 + i)), 128 + 90 * np.cos(y / 4), rng.uniform(0, 255, (40, 48))], 2)
        io.write_image(root / "photos" / f"sub{i % 2}" / f"p{i}.png", img)
    io.write_image(root / "style.png", rng.uniform(0, 255, (40, 40, 3)))
    return root


def options(dataset, out, vgg_file, **kw):
    base = dict(style=str(dataset / "style.png"), data=str(dataset / "photos"), out=str(out), steps=8, arch="johnson_s8_skip",
                batch_size=2, image_size=32, checkpoint_every=4, workers=0, vgg_weights=vgg_file,
                progress=False, preview_size=48)
    base.update(kw)
    return TrainOptions(**base)


def read_log(run_dir):
    return [json.loads(line) for line in (Path(run_dir) / "log.jsonl").read_text().splitlines()]


def test_paths_may_be_pathlib_paths(tmp_path, dataset, random_vgg_file):
    """Python callers pass Paths: the run records them as text in config.json and its checkpoints."""
    run = tmp_path / "paths"
    result = train(options(dataset, run, Path(random_vgg_file), steps=2, checkpoint_every=2,
                           style=dataset / "style.png", data=dataset / "photos", preview=dataset / "photos" / "sub0" / "p0.png"))
    assert result.step == 2
    recorded = json.loads((run / "config.json").read_text())["options"]
    assert recorded["style"] == str(dataset / "style.png") and recorded["vgg_weights"] == str(random_vgg_file)


def test_lineage_is_recorded_through_init_from_and_reaches_the_card(tmp_path, dataset, random_vgg_file):
    from mxstyle.export import export_model

    base, a, b = tmp_path / "base", tmp_path / "a", tmp_path / "b"
    train(options(dataset, base, random_vgg_file, steps=2, checkpoint_every=2))
    with pytest.warns(RuntimeWarning, match="loss differs"):
        train(options(dataset, a, random_vgg_file, steps=3, checkpoint_every=3, init_from=str(base), style_weight=9.0))
    train(options(dataset, b, random_vgg_file, steps=1, checkpoint_every=1, init_from=str(a), lr=1e-4, style_weight=9.0))
    legs = json.loads((b / "config.json").read_text())["init_from"]["lineage"]
    assert [(leg["run"], leg["steps"]) for leg in legs] == [("base", 2), ("a", 3)]
    assert legs[1]["style"] == [9.0, list(TrainOptions.style_layers)] and legs[1]["arch"] == "johnson_s8_skip"
    full = ckpt.lineage(ckpt.latest_checkpoint(b))
    assert [(leg["run"], leg["steps"], leg["lr"]) for leg in full] == [("base", 2, 5e-4), ("a", 3, 5e-4), ("b", 1, 1e-4)]
    assert full[0]["style"][0] == 8.0 and full[2]["style"][0] == 9.0
    assert {leg["precision"] for leg in full} == {options(dataset, base, random_vgg_file).loss_precision()}
    card = export_model(str(b), "lineage", str(tmp_path / "model"), log=lambda *_: None)
    assert card["training"]["lineage"] == full and card["training"]["total_steps"] == 6
    # a run recorded before lineages existed: the walk reads the ancestors' config.json
    for path in [b / "config.json", *b.glob("checkpoints/step-*/state.json")]:
        record = json.loads(path.read_text())
        (record["run"] if "run" in record else record)["init_from"].pop("lineage")
        path.write_text(json.dumps(record))
    assert ckpt.lineage(ckpt.latest_checkpoint(b)) == full
    # a leg recorded before the precision option reads as float32
    records = {path: path.read_text() for path in [b / "config.json", *b.glob("checkpoints/step-*/state.json")]}
    for path, text in records.items():
        record = json.loads(text)
        run = record["run"] if "run" in record else record
        run["init_from"]["lineage"] = [{k: v for k, v in leg.items() if k != "precision"} for leg in full[:2]]
        path.write_text(json.dumps(record))
    assert [leg["precision"] for leg in ckpt.lineage(ckpt.latest_checkpoint(b))[:2]] == ["float32", "float32"]
    for path, text in records.items():
        path.write_text(text)
    # an ancestor whose record is gone ends the lineage there, marked
    (base / "config.json").unlink()
    (a / "config.json").write_text(json.dumps(dict(json.loads((a / "config.json").read_text()),
                                                   init_from=dict(json.loads((a / "config.json").read_text())["init_from"],
                                                                  lineage=None))))
    legs = ckpt.lineage(ckpt.latest_checkpoint(b))
    assert legs[0] == dict(run="base", arch="johnson_s8_skip", steps=2, record="not found")
    assert [leg["run"] for leg in legs] == ["base", "a", "b"]
    card = export_model(str(b), "lineage2", str(tmp_path / "model2"), log=lambda *_: None)
    assert card["training"]["total_steps"] is None
    # a record that points back at a folder already walked ends the walk instead of looping
    config = json.loads((a / "config.json").read_text())
    config["init_from"] = dict(config["init_from"], checkpoint=str(ckpt.latest_checkpoint(b)), lineage=None)
    (a / "config.json").write_text(json.dumps(config))
    assert [leg["run"] for leg in ckpt.lineage(ckpt.latest_checkpoint(b))] == ["b", "a", "b"]


def test_resume_follows_the_same_loss_trajectory(tmp_path, dataset, random_vgg_file):
    straight = train(options(dataset, tmp_path / "a", random_vgg_file))
    assert straight.step == 8
    train(options(dataset, tmp_path / "b", random_vgg_file, steps=4))
    resumed = train(options(dataset, tmp_path / "b", random_vgg_file, resume=True))
    assert resumed.step == 8
    a, b = read_log(tmp_path / "a"), read_log(tmp_path / "b")
    assert [r["step"] for r in a] == [r["step"] for r in b] == list(range(1, 9))
    for ra, rb in zip(a[4:], b[4:]):
        for key in ("loss", "content", "style", "tv"):
            assert rb[key] == pytest.approx(ra[key], rel=1e-5), (ra["step"], key)
    wa = mx.nd.load(str(tmp_path / "a" / "checkpoints" / "step-000008" / "generator.params"))
    wb = mx.nd.load(str(tmp_path / "b" / "checkpoints" / "step-000008" / "generator.params"))
    for key in wa:
        np.testing.assert_allclose(wa[key].asnumpy(), wb[key].asnumpy(), rtol=1e-5, atol=1e-7)


def test_lr_final_decays_along_a_half_cosine():
    o = TrainOptions(style="s", data="d", out="o", steps=5, lr=1e-3, lr_final=1e-4)
    lrs = [o.lr_at(step) for step in range(1, 6)]
    assert lrs[0] == pytest.approx(1e-3) and lrs[-1] == pytest.approx(1e-4)
    assert lrs[2] == pytest.approx(5.5e-4) and all(a > b for a, b in zip(lrs, lrs[1:]))
    assert TrainOptions(style="s", data="d", out="o", lr=1e-3).lr_at(7) == 1e-3  # constant without it


def test_a_decaying_lr_is_logged_resumes_exactly_and_fixes_the_steps(tmp_path, dataset, random_vgg_file,
                                                                      monkeypatch):
    from mxstyle.training import loop

    decay = dict(lr=2e-3, lr_final=2e-4)
    train(options(dataset, tmp_path / "a", random_vgg_file, **decay))
    real_step, calls = loop.train_step, []

    def killed_at_step_6(*args, **kwargs):
        calls.append(1)
        if len(calls) == 6:
            raise KeyboardInterrupt  # after checkpoint 4 and step 5
        return real_step(*args, **kwargs)

    monkeypatch.setattr(loop, "train_step", killed_at_step_6)
    with pytest.raises(KeyboardInterrupt):
        train(options(dataset, tmp_path / "b", random_vgg_file, **decay))
    monkeypatch.setattr(loop, "train_step", real_step)
    resumed = train(options(dataset, tmp_path / "b", random_vgg_file, resume=True, **decay))
    assert resumed.step == 8
    a, b = read_log(tmp_path / "a"), read_log(tmp_path / "b")
    want = [options(dataset, "x", random_vgg_file, **decay).lr_at(k) for k in range(1, 9)]
    assert want[0] == pytest.approx(2e-3) and want[-1] == pytest.approx(2e-4)
    assert [r["lr"] for r in a] == pytest.approx(want) and [r["lr"] for r in b] == pytest.approx(want)
    for ra, rb in zip(a, b):
        assert rb["loss"] == pytest.approx(ra["loss"], rel=1e-5), ra["step"]
    with pytest.raises(ConfigError, match="--steps"):  # the schedule spans the run's planned steps
        train(options(dataset, tmp_path / "b", random_vgg_file, resume=True, steps=12, **decay))
    with pytest.raises(ConfigError, match="--lr-final"):
        train(options(dataset, tmp_path / "b", random_vgg_file, resume=True, lr=2e-3))


def test_auto_precision_is_decided_by_the_cpu_and_a_resume_keeps_the_runs_own(tmp_path, dataset, random_vgg_file,
                                                                             monkeypatch):
    from mxstyle.training import loop

    for native, expected in ((False, "float32"), (True, "bfloat16")):
        monkeypatch.setattr(loop, "has_native_bf16", lambda native=native: native)
        assert options(dataset, tmp_path / "x", random_vgg_file).loss_precision() == expected
    # a float32 run resumed with "auto" on a bfloat16 CPU continues in float32, on the same trajectory
    monkeypatch.setattr(loop, "has_native_bf16", lambda: True)
    straight = tmp_path / "straight"
    train(options(dataset, straight, random_vgg_file, precision="float32"))
    run = tmp_path / "run"
    train(options(dataset, run, random_vgg_file, steps=4, precision="float32"))
    train(options(dataset, run, random_vgg_file, resume=True))
    assert json.loads((run / "config.json").read_text())["loss_precision"] == "float32"
    for ra, rb in zip(read_log(straight)[4:], read_log(run)[4:]):
        assert rb["loss"] == pytest.approx(ra["loss"], rel=1e-5), ra["step"]
    # a bfloat16 run cannot continue on a CPU without bfloat16 unless told to go on in float32
    monkeypatch.setattr(loop, "has_native_bf16", lambda: False)
    state_path = next((run / "checkpoints").glob("step-000008")) / "state.json"
    state = json.loads(state_path.read_text())
    state["run"]["loss_precision"] = "bfloat16"
    state_path.write_text(json.dumps(state))
    with pytest.raises(ConfigError, match="--precision float32"):
        train(options(dataset, run, random_vgg_file, steps=9, resume=True))
    with pytest.raises(ConfigError, match="AVX512_BF16"):
        train(options(dataset, tmp_path / "new", random_vgg_file, precision="bfloat16"))


@pytest.mark.skipif(not has_native_bf16(), reason="the CPU has no native bfloat16 (AVX512_BF16 or AMX)")
def test_a_bfloat16_run_records_its_precision_and_follows_the_float32_losses(tmp_path, dataset, random_vgg_file):
    """Same seed, same photos: the bfloat16 loss network gives the float32 run's losses to within
    bfloat16's accuracy over the first steps (the runs drift apart slowly as the weights differ)."""
    runs = {}
    for precision in ("float32", "bfloat16"):
        run = tmp_path / precision
        train(options(dataset, run, random_vgg_file, steps=3, checkpoint_every=3, precision=precision))
        assert json.loads((run / "config.json").read_text())["loss_precision"] == precision
        runs[precision] = read_log(run)
    for ra, rb in zip(runs["float32"], runs["bfloat16"]):
        for key in ("content", "style"):
            assert rb[key] == pytest.approx(ra[key], rel=5e-2), (ra["step"], key)
        assert rb["loss"] != ra["loss"]  # it did run in bfloat16


def test_a_run_writes_log_plot_previews_and_keeps_two_checkpoints(tmp_path, dataset, random_vgg_file):
    run = tmp_path / "run"
    train(options(dataset, run, random_vgg_file, steps=6, checkpoint_every=2, log_every=2))
    log = read_log(run)
    assert [r["step"] for r in log] == [2, 4, 6]
    assert set(log[0]) >= {"step", "loss", "content", "style", "tv", "saturation", "seconds"}
    assert all(np.isfinite(r["loss"]) for r in log)
    assert (run / "loss.png").stat().st_size > 1000
    assert sorted(p.name for p in (run / "previews").iterdir()) == [
        "step-000002.jpg", "step-000004.jpg", "step-000006.jpg"]
    assert [p.name for p in ckpt.complete_checkpoints(run)] == ["step-000004", "step-000006"]
    assert ckpt.latest_checkpoint(run).name == "step-000006"
    assert json.loads((run / "config.json").read_text())["arch"] == "johnson_s8_skip"
    # the default generator: the shipped default model's, so the README's --init-from its state works
    from mxstyle import model_folder
    default_card = json.loads((model_folder.resolve_model_dir(model_folder.DEFAULT_MODEL) / "model.json").read_text())
    assert TrainOptions.arch == default_card["arch"] == "johnson_s8_skip_w12_decres"
    state = ckpt.read_checkpoint(ckpt.latest_checkpoint(Path(__file__).resolve().parents[1] / "training_state" / "langlois_s8"))
    assert state["run"]["arch"] == TrainOptions.arch
    # keep_checkpoints=0 keeps every one (to compare a run's checkpoints afterwards)
    every = tmp_path / "every"
    train(options(dataset, every, random_vgg_file, steps=6, checkpoint_every=2, keep_checkpoints=0))
    assert [p.name for p in ckpt.complete_checkpoints(every)] == ["step-000002", "step-000004", "step-000006"]


def test_an_existing_run_is_not_overwritten_and_resume_checks_options(tmp_path, dataset, random_vgg_file):
    run = tmp_path / "run"
    train(options(dataset, run, random_vgg_file, steps=2, checkpoint_every=2))
    with pytest.raises(ConfigError, match="--resume"):
        train(options(dataset, run, random_vgg_file, steps=4))
    with pytest.raises(ConfigError, match="batch-size"):
        train(options(dataset, run, random_vgg_file, steps=4, resume=True, batch_size=3))
    done = train(options(dataset, run, random_vgg_file, steps=2, resume=True))
    assert done.step == 2  # nothing left to do


def test_saturation_penalty_reaches_logits_that_tanh_has_cut_off(random_vgg_file):
    """With every logit at +12 the output is flat white and tanh passes no gradient at all; the
    penalty pulls the logits back."""
    from mxnet import autograd
    from mxstyle.training.graph import SATURATION_MARGIN, build_training_graph, default_train_config

    photos = mx.nd.array(np.random.RandomState(0).uniform(0, 255, (2, 3, 32, 32)))
    grads = {}
    for weight in (0.0, 10.0):
        mx.random.seed(0)
        net = get_model("johnson_lite")
        net.initialize(mx.init.Xavier(magnitude=2.0))
        bias = [p for name, p in net.output.collect_params().items() if name.endswith("bias")][0]
        graph, loss = build_training_graph(net, default_train_config(), vgg_weights=random_vgg_file,
                                           saturation_weight=weight)
        grams = loss.style_targets(photos[:1])
        bias.set_data(bias.data() + 12.0)
        with autograd.record():
            total, _, _, _, saturation, stylized = graph(photos, *grams)
        total.backward()
        assert stylized.min().asscalar() > 254.99
        logits = net.logits(mx.nd, photos).asnumpy()
        want = weight * np.mean(np.maximum(np.abs(logits) - SATURATION_MARGIN, 0) ** 2)
        assert float(saturation.asscalar()) == pytest.approx(want, rel=1e-4)
        grads[weight] = bias.grad().asnumpy()
    assert np.all(grads[0.0] == 0)       # the perceptual loss cannot see saturated pixels
    assert np.all(grads[10.0] > 0)       # the penalty lowers the logits


def test_init_from_starts_a_new_run_from_another_runs_generator(tmp_path, dataset, random_vgg_file):
    base = tmp_path / "base"
    train(options(dataset, base, random_vgg_file, steps=4))
    tuned = tmp_path / "tuned"
    # a changed loss is allowed but warned about: Adam's moments belong to the old loss
    with pytest.warns(RuntimeWarning, match=r"loss differs .*saturation_weight: 1000.0 -> 5.0"):
        train(options(dataset, tuned, random_vgg_file, steps=1, lr=1e-12, saturation_weight=5.0,
                      init_from=str(base)))
    state = json.loads((tuned / "config.json").read_text())
    assert state["init_from"]["loss_changes"] == ["saturation_weight: 1000.0 -> 5.0"]
    source = ckpt.read_checkpoint(ckpt.latest_checkpoint(base))
    assert state["init_from"]["step"] == 4
    assert state["init_from"]["generator_sha256"] == source["files"]["generator.params"]
    wa = mx.nd.load(str(ckpt.latest_checkpoint(base) / "generator.params"))
    wb = mx.nd.load(str(ckpt.latest_checkpoint(tuned) / "generator.params"))
    for key in wa:  # one step at lr 1e-12: the weights it started from
        np.testing.assert_allclose(wa[key].asnumpy(), wb[key].asnumpy(), rtol=1e-6, atol=1e-9)
    # resuming keeps the record; a bad source is refused before any work
    train(options(dataset, tuned, random_vgg_file, steps=2, lr=1e-12, saturation_weight=5.0,
                  init_from=str(base), resume=True))
    assert json.loads((tuned / "config.json").read_text())["init_from"]["step"] == 4
    # the same loss (a new lr is not part of it): no warning
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(options(dataset, tmp_path / "same", random_vgg_file, steps=1, lr=5e-4, init_from=str(base)))
    assert not [w for w in caught if "loss differs" in str(w.message)]
    assert json.loads((tmp_path / "same" / "config.json").read_text())["init_from"]["loss_changes"] == []
    with pytest.raises(ConfigError, match="not a training run"):
        train(options(dataset, tmp_path / "x", random_vgg_file, init_from=str(tmp_path / "nothing")))
    with pytest.raises(ConfigError, match="johnson_s8_skip generator, not johnson_lite"):
        train(options(dataset, tmp_path / "y", random_vgg_file, arch="johnson_lite", init_from=str(base)))


def test_init_from_a_narrower_generator_widens_it_to_the_same_function(tmp_path, dataset, random_vgg_file):
    from mxstyle.models import get_model
    from mxstyle.training import widen

    base = tmp_path / "narrow"
    train(options(dataset, base, random_vgg_file, steps=2, arch="johnson_s8_skip"))
    wide = tmp_path / "wide"
    # at lr 1e-12 the one step changes nothing visible: the checkpoint is the widened start
    train(options(dataset, wide, random_vgg_file, steps=1, lr=1e-12, arch="johnson_s8_skip_w12", init_from=str(base)))
    record = json.loads((wide / "config.json").read_text())["init_from"]
    assert record["arch"] == "johnson_s8_skip" and record["widened_to"] == "johnson_s8_skip_w12"
    narrow_net, wide_net = get_model("johnson_s8_skip"), get_model("johnson_s8_skip_w12")
    narrow_net.load_parameters(str(ckpt.latest_checkpoint(base) / "generator.params"))
    wide_net.load_parameters(str(ckpt.latest_checkpoint(wide) / "generator.params"))
    x = mx.nd.array(np.random.RandomState(1).uniform(0, 255, (1, 3, 48, 64)))
    np.testing.assert_allclose(wide_net(x).asnumpy(), narrow_net(x).asnumpy(), atol=1e-2)
    # the new channels are in use (not zero) and the trained ones kept their values
    first = [p for n, p in wide_net._collect_params_with_prefix().items() if n.endswith("weight")][0].data().asnumpy()
    trained = [p for n, p in narrow_net._collect_params_with_prefix().items() if n.endswith("weight")][0].data().asnumpy()
    assert first.shape == (12, 3, 3, 3) and np.abs(first[8:]).max() > 0
    np.testing.assert_allclose(first[:8], trained, rtol=1e-4, atol=1e-5)
    # Adam's moments came along, widened: the run continues
    assert train(options(dataset, wide, random_vgg_file, steps=3, lr=1e-12, arch="johnson_s8_skip_w12",
                         init_from=str(base), resume=True)).step == 3
    assert not widen.is_widening({"a": (4, 3)}, {"a": (2, 3)}) and not widen.is_widening({"a": (2,)}, {"b": (2,)})
    with pytest.raises(ConfigError, match="nor a smaller one"):  # wider to narrower
        train(options(dataset, tmp_path / "back", random_vgg_file, arch="johnson_s8_skip", init_from=str(wide)))


def test_init_from_grows_a_generator_by_identity_blocks_and_moves_adams_state_by_name(tmp_path, dataset, random_vgg_file):
    import pickle

    from mxstyle.models import get_model
    from mxstyle.training import widen

    base = tmp_path / "narrow"
    train(options(dataset, base, random_vgg_file, steps=2, arch="johnson_s8_skip"))
    grown = tmp_path / "grown"
    # widened and deepened at once; at lr 1e-12 the one step changes nothing visible
    train(options(dataset, grown, random_vgg_file, steps=1, lr=1e-12, arch="johnson_s8_skip_w12_decres",
                  init_from=str(base)))
    narrow_net, grown_net = get_model("johnson_s8_skip"), get_model("johnson_s8_skip_w12_decres")
    narrow_net.load_parameters(str(ckpt.latest_checkpoint(base) / "generator.params"))
    grown_net.load_parameters(str(ckpt.latest_checkpoint(grown) / "generator.params"))
    x = mx.nd.array(np.random.RandomState(1).uniform(0, 255, (1, 3, 48, 64)))
    np.testing.assert_allclose(grown_net(x).asnumpy(), narrow_net(x).asnumpy(), atol=1e-2)
    # the Trainer orders parameters by full name, so the new blocks shift the old ones' indices:
    # each Adam state must follow its parameter by name
    old_order, new_order = widen.trainer_order(narrow_net), widen.trainer_order(grown_net)
    assert [n for n in new_order if n in old_order] == old_order
    assert new_order[:len(old_order)] != old_order
    source_file = ckpt.latest_checkpoint(base) / ckpt.TRAINER_FILE
    old_states, _ = pickle.loads(source_file.read_bytes())
    new_params = mx.gluon.Trainer(grown_net.collect_params(), "adam")._params
    new_states, optimizer = pickle.loads(widen.widen_trainer_states(source_file, old_order, new_order, new_params))
    # only trained parameters have a state (gluon's InstanceNorm scales are fixed at 1); the new
    # blocks' start fresh
    assert {new_order[j] for j in new_states} == {old_order[i] for i in old_states}
    for i in old_states:
        j = new_order.index(old_order[i])
        for old_m, new_m in zip(old_states[i], new_states[j]):
            old_m, new_m = old_m.asnumpy(), new_m.asnumpy()
            assert new_m.shape == new_params[j].shape
            np.testing.assert_array_equal(new_m[tuple(slice(0, n) for n in old_m.shape)], old_m)
    _, old_optimizer = pickle.loads(source_file.read_bytes())
    assert {new_order[j]: n for j, n in optimizer._index_update_count.items()} == \
        {old_order[i]: n for i, n in old_optimizer._index_update_count.items()}
    # and the run goes on from the grown start, the new blocks' scales leaving 0
    assert train(options(dataset, grown, random_vgg_file, steps=3, lr=1e-12, arch="johnson_s8_skip_w12_decres",
                         init_from=str(base), resume=True)).step == 3
    grown_net.load_parameters(str(ckpt.latest_checkpoint(grown) / "generator.params"))
    scales = [p.data().asnumpy() for n, p in grown_net._collect_params_with_prefix().items()
              if n.startswith("refine.") and n.endswith("body.1.norm.gamma")]
    assert len(scales) == 2 and all(np.abs(s).max() > 0 for s in scales)


def test_init_from_adds_a_second_block_per_stage_keeping_the_first(tmp_path, dataset, random_vgg_file):
    from mxstyle.models import get_model

    one = tmp_path / "one"
    train(options(dataset, one, random_vgg_file, steps=3, arch="johnson_s8_skip_w12_decres"))
    two = tmp_path / "two"
    train(options(dataset, two, random_vgg_file, steps=1, lr=1e-12, arch="johnson_s8_skip_w12_decres2",
                  init_from=str(one)))
    one_net, two_net = get_model("johnson_s8_skip_w12_decres"), get_model("johnson_s8_skip_w12_decres2")
    one_net.load_parameters(str(ckpt.latest_checkpoint(one) / "generator.params"))
    two_net.load_parameters(str(ckpt.latest_checkpoint(two) / "generator.params"))
    x = mx.nd.array(np.random.RandomState(2).uniform(0, 255, (1, 3, 48, 64)))
    np.testing.assert_allclose(two_net(x).asnumpy(), one_net(x).asnumpy(), atol=1e-2)
    old, new = one_net._collect_params_with_prefix(), two_net._collect_params_with_prefix()
    # the trained blocks are each stage's first (refine.S.0), the new ones (refine.S.1) the identity
    trained = [n for n in old if n.startswith("refine.") and n.endswith("body.1.norm.gamma")]
    assert sorted(trained) == ["refine.0.0.body.1.norm.gamma", "refine.1.0.body.1.norm.gamma"]
    for name in trained:
        assert np.abs(old[name].data().asnumpy()).max() > 0
        np.testing.assert_allclose(new[name].data().asnumpy(), old[name].data().asnumpy(), atol=1e-9)
        assert np.abs(new[name.replace(".0.body", ".1.body")].data().asnumpy()).max() < 1e-9

def test_widen_array_keeps_old_outputs_blind_to_new_inputs():
    from mxstyle.training.widen import widen_array

    trained, fresh = np.ones((2, 3, 1, 1)), np.full((4, 5, 1, 1), 7.0)
    out = widen_array(trained, fresh, inputs_axis=1)
    assert (out[:2, :3] == 1).all() and (out[:2, 3:] == 0).all() and (out[2:] == 7).all()
    assert (widen_array(np.ones(2), np.full(3, 5.0)) == [1, 1, 5]).all()


def test_init_from_another_architecture_with_the_same_parameters(tmp_path, dataset, random_vgg_file):
    base = tmp_path / "s8"
    train(options(dataset, base, random_vgg_file, steps=1, arch="johnson_s8"))
    skip = tmp_path / "skip"
    train(options(dataset, skip, random_vgg_file, steps=1, lr=1e-12, arch="johnson_s8_skip", init_from=str(base)))
    assert json.loads((skip / "config.json").read_text())["init_from"]["arch"] == "johnson_s8"
    wa = mx.nd.load(str(ckpt.latest_checkpoint(base) / "generator.params"))
    wb = mx.nd.load(str(ckpt.latest_checkpoint(skip) / "generator.params"))
    assert sorted(wa) == sorted(wb)
    for key in wa:
        np.testing.assert_allclose(wa[key].asnumpy(), wb[key].asnumpy(), rtol=1e-6, atol=1e-9)
    with pytest.raises(ConfigError, match="johnson_s8 generator, not johnson_lite"):
        train(options(dataset, tmp_path / "lite", random_vgg_file, arch="johnson_lite", init_from=str(base)))


def test_a_checkpoint_from_before_the_saturation_penalty_resumes_without_it(tmp_path, dataset, random_vgg_file):
    run = tmp_path / "run"
    train(options(dataset, run, random_vgg_file, steps=2, checkpoint_every=2, saturation_weight=0.0))
    state_file = ckpt.latest_checkpoint(run) / "state.json"
    state = json.loads(state_file.read_text())
    del state["run"]["options"]["saturation_weight"]  # as written by an older mxstyle
    state_file.write_text(json.dumps(state))
    with pytest.raises(ConfigError, match=r"saturation-weight \(0.0 in the checkpoint, 1000.0 now\)"):
        train(options(dataset, run, random_vgg_file, steps=3, resume=True))  # today's default
    assert train(options(dataset, run, random_vgg_file, steps=3, resume=True, saturation_weight=0.0)).step == 3


@pytest.mark.parametrize("bad,match", [
    (dict(arch="unet"), "johnson"), (dict(saturation_weight=-1.0), "saturation-weight"),
    (dict(steps=0), "steps"), (dict(image_size=30), "multiple"),
    (dict(lr=0), "lr"), (dict(style_layers=("relu9_1",)), "relu9_1"),
    (dict(keep_checkpoints=-1), "keep-checkpoints"), (dict(precision="float16"), "precision"),
    (dict(lr_final=1.0), "lr-final"), (dict(lr_final=0.0), "lr-final"),
])
def test_bad_options_are_refused_before_any_work(tmp_path, dataset, random_vgg_file, bad, match):
    with pytest.raises(ConfigError, match=match):
        train(options(dataset, tmp_path / "run", random_vgg_file, **bad))
    assert not (tmp_path / "run").exists()


def test_an_unreadable_photo_is_skipped_with_a_warning(tmp_path, dataset, random_vgg_file):
    import shutil

    data = tmp_path / "photos"
    shutil.copytree(dataset / "photos", data)
    (data / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    with pytest.warns(UserWarning, match="broken.jpg"):
        result = train(options(dataset, tmp_path / "run", random_vgg_file, data=str(data), steps=4,
                               batch_size=4))
    assert result.step == 4


# --- guards -------------------------------------------------------------------------------

class _Forced(HybridBlock):
    """A generator whose output is forced (constant, cast, NaN) but still has a weight to train."""
    stride = 4
    min_size = 8

    def __init__(self, mode, **kwargs):
        super().__init__(prefix=f"forced_{mode}_", **kwargs)
        self.mode, self.arch = mode, f"test_{mode}"
        with self.name_scope():
            self.gain = self.params.get("gain", shape=(1,), init=mx.init.Constant(0.01))

    def hybrid_forward(self, F, x, gain):
        texture = F.broadcast_mul(x - 127.5, gain)  # tiny: keeps a gradient, not a picture
        if self.mode == "constant":
            return texture + 127.5
        if self.mode == "cast":
            red = F.concat(F.ones_like(F.slice_axis(x, axis=1, begin=0, end=1)) * 250.0,
                           F.slice_axis(x, axis=1, begin=1, end=3) * 0.1, dim=1)
            return red + texture
        return F.broadcast_mul(x, gain) * float("nan")


@pytest.fixture
def forced_models(monkeypatch):
    """The _Forced generators, registered for one test only: an entry left in the registry would
    join tests/test_models.py's registry-parametrized tests wherever that module is collected later."""
    for mode in ("constant", "cast", "nan"):
        monkeypatch.setitem(registry._MODELS, f"test_{mode}", lambda mode=mode, **kw: _Forced(mode, **kw))


@pytest.mark.parametrize("mode,kind", [("constant", "collapse"), ("cast", "color_cast")])
def test_guard_fires_within_a_few_steps(tmp_path, dataset, random_vgg_file, mode, kind, forced_models):
    alerts = []
    train(options(dataset, tmp_path / "run", random_vgg_file, arch=f"test_{mode}", steps=5, lr=1e-6),
          on_alert=alerts.append)
    assert [a.kind for a in alerts] == [kind]
    assert alerts[0].step <= 3 and f"step {alerts[0].step}" in alerts[0].message


def test_a_healthy_batch_raises_no_alert(rng):
    guards = OutputGuards()
    photos = rng.uniform(0, 255, (2, 3, 16, 16))
    assert not any(guards.check(s, photos, photos * 0.8 + 20) for s in range(1, 6))


def test_nan_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, dataset, random_vgg_file, forced_models):
    run = tmp_path / "run"
    train(options(dataset, run, random_vgg_file, steps=4))
    good = ckpt.latest_checkpoint(run)
    # Swap the architecture's output for NaN by pointing the finished run at the NaN twin.
    state_file = good / ckpt.STATE_FILE
    with pytest.raises(DivergedError, match="step 1"):
        train(options(dataset, tmp_path / "nan_run", random_vgg_file, arch="test_nan", steps=4))
    assert ckpt.latest_checkpoint(tmp_path / "nan_run") is None  # nothing bad was saved
    assert ckpt.latest_checkpoint(run) == good and ckpt.read_checkpoint(good)["step"] == 4
    assert state_file.is_file()


def test_check_finite_names_the_step_and_terms():
    check_finite(3, dict(loss=1.0, content=0.5))
    with pytest.raises(DivergedError, match=r"step 7 \(loss=inf"):
        check_finite(7, dict(loss=float("inf"), content=0.5))


# --- checkpoints --------------------------------------------------------------------------

def small_generator_and_trainer():
    from mxnet import gluon

    net = get_model("johnson_lite")
    net.initialize(mx.init.Xavier())
    return net, gluon.Trainer(net.collect_params(), "adam", {"learning_rate": 1e-3})


def test_a_failure_during_a_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch):
    net, trainer = small_generator_and_trainer()
    ckpt.save_checkpoint(tmp_path, 4, net, trainer, dict(run={}))

    def dies(*args, **kwargs):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(trainer, "save_states", dies)
    with pytest.raises(OSError):
        ckpt.save_checkpoint(tmp_path, 8, net, trainer, dict(run={}))
    latest = ckpt.latest_checkpoint(tmp_path)
    assert latest.name == "step-000004"
    fresh, _ = small_generator_and_trainer()
    assert ckpt.load_checkpoint(latest, fresh)["step"] == 4


def test_a_tampered_checkpoint_is_refused(tmp_path):
    net, trainer = small_generator_and_trainer()
    folder = ckpt.save_checkpoint(tmp_path, 2, net, trainer, dict(run={}))
    params = folder / ckpt.GENERATOR_FILE
    data = bytearray(params.read_bytes())
    data[-10] ^= 0xFF
    params.write_bytes(bytes(data))
    with pytest.raises(ckpt.CheckpointError, match="sha256"):
        ckpt.load_checkpoint(folder, net)


KILLER = """
import sys, mxnet as mx
from mxnet import gluon
from mxstyle.models import get_model
from mxstyle.training import checkpoint as ckpt
net = get_model("johnson"); net.initialize(mx.init.Xavier())
trainer = gluon.Trainer(net.collect_params(), "adam", {"learning_rate": 1e-3})
print("ready", flush=True)
step = 0
while True:
    step += 1
    ckpt.save_checkpoint(sys.argv[1], step, net, trainer, dict(run={}))
"""


@pytest.mark.parametrize("delay", [0.3, 0.55, 0.8])
def test_a_kill_at_any_moment_leaves_a_loadable_checkpoint(tmp_path, delay):
    proc = subprocess.Popen([sys.executable, "-c", KILLER, str(tmp_path)], stdout=subprocess.PIPE,
                            cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.stdout.readline().strip() == b"ready"
    deadline = time.time() + 60
    while ckpt.latest_checkpoint(tmp_path) is None and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(delay)  # somewhere in the middle of a later write
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    latest = ckpt.latest_checkpoint(tmp_path)
    net, _ = small_generator_and_trainer()
    net = get_model("johnson")
    net.initialize(mx.init.Xavier())
    assert ckpt.load_checkpoint(latest, net)["step"] >= 1


def test_command_line_trains_with_worker_processes(tmp_path, dataset, random_vgg_file):
    run = tmp_path / "run"
    cmd = [sys.executable, str(ROOT / "tools" / "train.py"), "--style", str(dataset / "style.png"),
           "--data", str(dataset / "photos"), "--out", str(run), "--steps", "3", "--batch-size", "2",
           "--image-size", "32", "--checkpoint-every", "3", "--workers", "2",
           "--vgg-weights", random_vgg_file, "--no-progress", "--arch", "johnson_lite"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert [r["step"] for r in read_log(run)] == [1, 2, 3]
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 2 and again.stderr.startswith("error:") and "--resume" in again.stderr
