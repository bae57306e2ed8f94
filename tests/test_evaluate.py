"""mxstyle.evaluation, its command (tools/evaluate.py) and mxstyle.quality: the losses against numpy, the Gatys cache, the command
line's tables, card update and contact sheet (random VGG weights, a tiny random model)."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mxstyle import evaluation as ev, io
from mxstyle.evaluation import GatysCache
from mxstyle.model_folder import DEFAULT_MODEL
from mxstyle.quality import QualityMeter, blown_out, psnr
from tiny_model import photo

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def tiny(tiny_export, tmp_path_factory):
    """A copy of the shared tiny model: the evaluation writes into its card."""
    import shutil

    copy = tmp_path_factory.mktemp("evaluate") / "tiny"
    shutil.copytree(tiny_export()[1], copy)
    return copy


def _gram(f):
    c = f.shape[1]
    flat = f.reshape(c, -1)
    return flat @ flat.T / flat.size


def test_quality_meter_matches_numpy(random_vgg_file, tmp_path):
    style = tmp_path / "style.png"
    io.write_image(style, photo(72, 72, seed=3))
    meter = QualityMeter(style, style_size=72, vgg_weights=str(random_vgg_file))
    a, b = photo(64, 80, seed=1), photo(64, 80, seed=2)
    got = meter(a, b)
    fa, fb = meter._features(a), meter._features(b)
    fs = meter._features(io.read_image(style))
    for layer in ("relu2_2", "relu4_2"):
        want = np.mean((fa[layer].asnumpy() - fb[layer].asnumpy()) ** 2)
        assert got[f"content_{layer}"] == pytest.approx(want, rel=1e-4)
    want = sum(np.mean((_gram(fa[l].asnumpy()) - _gram(fs[l].asnumpy())) ** 2)
               for l in ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"))
    assert got["style"] == pytest.approx(want, rel=1e-3)
    assert meter(b, b)["content_relu4_2"] == 0.0
    with pytest.raises(ValueError):
        meter(a, photo(32, 32))


def test_psnr():
    a = np.zeros((4, 4, 3))
    assert psnr(a, a) == float("inf")
    assert psnr(a, a + 255) == pytest.approx(0.0)


def test_blown_out_counts_only_new_white_pixels():
    photo_img = np.full((4, 5, 3), 100.0)
    photo_img[0, :] = 255  # white in the photo already: not the model's doing
    result = photo_img.copy()
    result[1, :2] = 252   # new white pixels
    result[2, 0] = [255, 255, 200]  # bright but not white
    assert blown_out(result, photo_img) == pytest.approx(2 / 20)
    assert blown_out(photo_img, photo_img) == 0.0
    with pytest.raises(ValueError):
        blown_out(result, photo_img[:3])


def test_gatys_cache_round_trip_and_damaged_entry(tmp_path):
    cache = GatysCache(tmp_path / "cache")
    key = cache.key(b"photo", b"style", size=64, iters=3)
    assert key != cache.key(b"photo", b"style", size=64, iters=4)
    assert cache.get(key) is None
    img = photo(16, 16)
    cache.put(key, dict(seconds=1.5), img)
    info, back = cache.get(key)
    assert info == dict(seconds=1.5) and np.abs(back - np.round(img)).max() <= 0.5
    (tmp_path / "cache" / f"{key}.json").write_text("{not json")
    assert cache.get(key) is None  # recomputed, not a crash


def test_gatys_cache_published_references(tmp_path):
    refs = tmp_path / "refs.json"
    cache = GatysCache(tmp_path / "cache", references=refs)
    key = cache.key(b"photo", b"style", size=64, iters=3)
    assert cache.get(key) is None and cache.published() == {}  # no file yet: nothing published
    info = dict(iters=3, seconds=2.0, curve=[dict(iter=0, style=9.0), dict(iter=3, style=4.0)])
    assert cache.publish(key, info) and not cache.publish(key, info)  # the second time: nothing new
    assert not cache.publish("other", dict(iters=3))  # without a curve it is no reference
    assert json.loads(refs.read_text()) == {key: info}
    assert cache.get(key) == (info, None)  # a hit without an image
    cache.put(key, dict(info, local=True), photo(8, 8))
    assert cache.get(key)[0]["local"] and cache.get(key)[1] is not None  # the local cache comes first
    refs.write_text("[1, 2]")
    with pytest.raises(ev.ConfigError, match="not a JSON object"):
        GatysCache(tmp_path / "empty", references=refs).get(key)
    refs.write_text("{broken")
    with pytest.raises(ev.ConfigError, match="cannot read it"):
        GatysCache(tmp_path / "empty", references=refs).get(key)
    with pytest.raises(ev.ConfigError, match="no Gatys references file"):
        GatysCache(tmp_path / "cache").publish(key, info)


def test_published_references_replace_the_cache(tiny, tmp_path, random_vgg_file):
    """References published by one run give a fresh machine (no cache) the same ratios, from the
    curves alone; the reference's losses are its curve's last point."""
    from mxstyle.cli import evaluate as cli

    photos = tmp_path / "photos"
    for i in range(2):
        io.write_image(photos / f"p{i}.jpg", photo(60, 90, seed=20 + i))
    refs, out_json = tmp_path / "refs.json", tmp_path / "eval.json"
    args = ["--model", str(tiny), "--photos", str(photos), "--size", "64", "--gatys-iters", "3",
            "--vgg-weights", str(random_vgg_file), "--json", str(out_json), "--references", str(refs)]
    assert cli.main(args + ["--cache", str(tmp_path / "cache"), "--publish-gatys"]) == 0
    first = json.loads(out_json.read_text())["results"][0]["rows"]
    published = json.loads(refs.read_text())
    assert sorted(e["photo"] for e in published.values()) == ["p0.jpg", "p1.jpg"]
    assert cli.main(args + ["--cache", str(tmp_path / "fresh"), "--cached-gatys-only"]) == 0
    again = json.loads(out_json.read_text())["results"][0]["rows"]
    assert not (tmp_path / "fresh").exists()  # nothing computed
    for a, b in zip(first, again):
        entry = next(e for e in published.values() if e["photo"] == a["photo"])
        assert b["gatys"]["style"] == entry["curve"][-1]["style"]
        assert b["style_gatys_iters"] == a["style_gatys_iters"]
        for m in ("content_relu2_2", "content_relu4_2", "style"):  # the image's 8-bit rounding apart
            assert b["ratio"][m] == pytest.approx(a["ratio"][m], rel=0.05)
    with pytest.raises(ev.ConfigError, match="needs a references file"):
        cli.main(args[:-2] + ["--references", "none", "--publish-gatys"])


def test_json_and_markdown_keep_other_models(tiny, tmp_path, random_vgg_file):
    from mxstyle.cli import evaluate as cli

    photos = tmp_path / "photos"
    io.write_image(photos / "p0.jpg", photo(60, 90, seed=30))
    out_json, out_md = tmp_path / "eval.json", tmp_path / "eval.md"
    args = ["--model", str(tiny), "--photos", str(photos), "--size", "64", "--no-gatys",
            "--vgg-weights", str(random_vgg_file), "--json", str(out_json), "--markdown", str(out_md)]
    assert cli.main(args) == 0
    data = json.loads(out_json.read_text())
    (mine,) = data["results"]
    other = dict(mine, name="other", command="mxstyle evaluate --model other")
    out_json.write_text(json.dumps(dict(command="earlier", results=[other, mine])))
    assert cli.main(args + ["--limit", "1"]) == 0
    results = json.loads(out_json.read_text())["results"]
    assert [r["name"] for r in results] == ["other", mine["name"]]  # replaced in place, the other kept
    assert results[0] == other and results[1]["command"].endswith("--limit 1")
    text = out_md.read_text()
    assert "**other (" in text and f"**{mine['name']} (" in text and "*mxstyle evaluate --model other*" in text
    out_json.write_text("{not json")
    with pytest.raises(ev.ConfigError, match="holds no earlier results"):
        cli.main(args)


def test_command_line_tables_card_and_contact_sheet(tiny, tmp_path, random_vgg_file):
    photos = tmp_path / "photos"
    for i in range(2):
        io.write_image(photos / f"p{i}.jpg", photo(60, 90, seed=10 + i))
    out_json, out_md, sheet = tmp_path / "eval.json", tmp_path / "eval.md", tmp_path / "sheet.jpg"
    doc = tmp_path / "README.md"
    doc.write_text("# intro\n\n<!-- evaluate.py summary: begin -->\nold table\n<!-- evaluate.py summary: end -->\n\nafter\n")
    args = [sys.executable, str(ROOT / "tools" / "evaluate.py"), "--model", str(tiny), "--photos", str(photos),
            "--size", "64", "--gatys-iters", "3", "--vgg-weights", str(random_vgg_file),
            "--cache", str(tmp_path / "cache"), "--json", str(out_json), "--markdown", str(out_md),
            "--contact-sheet", str(sheet), "--update-card", "--update-docs", str(doc)]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out_json.read_text())["results"][0]
    # the summary table replaced what stood between the markers, and nothing else
    before, table, after = doc.read_text().split("summary: begin -->\n")[0], *doc.read_text().split(
        "summary: begin -->\n")[1].split("<!-- evaluate.py summary: end -->")
    assert before == "# intro\n\n<!-- evaluate.py " and after == "\n\nafter\n" and "old table" not in table
    assert table.splitlines()[0].startswith("| model | photos (with Gatys reference)") and len(table.splitlines()) == 3
    assert f"{result['summary']['style_ratio']:.2f}x" in table.splitlines()[2]
    assert [r["photo"] for r in result["rows"]] == ["p0.jpg", "p1.jpg"]
    for r in result["rows"]:
        for m in ("content_relu2_2", "content_relu4_2", "style"):
            assert r["ratio"][m] == pytest.approx(r["model"][m] / r["gatys"][m])
        assert r["int8"]["psnr_vs_fp32"] > 0
        assert 0 <= r["blown_out_pct"] <= 100
        assert r["style_gatys_iters"] is None or 0 <= r["style_gatys_iters"] <= 3
    # content against Gatys's at the iteration of equal style, read off the cached curve
    entries = {json.loads(p.read_text())["photo"]: json.loads(p.read_text()) for p in (tmp_path / "cache").glob("*.json")}
    for r in result["rows"]:
        at = ev.curve_value_at(entries[r["photo"]]["curve"], r["style_gatys_iters"], "content_relu4_2")
        if at:
            assert r["content_relu4_2_vs_equal_style"] == pytest.approx(r["model"]["content_relu4_2"] / at)
        else:
            assert "content_relu4_2_vs_equal_style" not in r
    assert result["summary"]["style_gatys_iters_photos"] == 2
    assert "geometric mean of ratios" in out_md.read_text() and "style = Gatys at iteration" in out_md.read_text()
    # each cached reference keeps its loss curve at iterations 0..3, falling in style from the photo
    entries = [json.loads(p.read_text()) for p in sorted((tmp_path / "cache").glob("*.json"))]
    for entry in entries:
        assert [c["iter"] for c in entry["curve"]] == [0, 1, 2, 3]
        assert entry["curve"][0]["content_relu4_2"] == 0.0 and entry["curve"][-1]["style"] < entry["curve"][0]["style"]
    card = json.loads((tiny / "model.json").read_text())
    assert card["evaluation"]["photo_files"] == ["p0.jpg", "p1.jpg"]
    assert card["evaluation"]["style_ratio"] == pytest.approx(result["summary"]["style_ratio"])
    img = io.read_image(sheet)
    # header + 2 photos; photo + 1 style: cells 320 wide with 6 px gaps, the header 320 tall, and
    # each landscape row (60x90 photos, 43x64 results) as tall as its tallest image at 320 wide
    assert img.shape[1] == 2 * 320 + 6
    assert img.shape[0] == 320 + 2 * (6 + round(43 * 320 / 64))
    # the Gatys references are cached: a second run computes none and gives the same numbers
    files = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len(files) == 4
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    again = json.loads(out_json.read_text())["results"][0]
    assert again["rows"][0]["gatys"]["style"] == result["rows"][0]["gatys"]["style"]
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == files
    # --cached-gatys-only: a new photo gets the model's numbers but no reference, and none is computed
    io.write_image(photos / "p2.jpg", photo(60, 90, seed=12))
    proc = subprocess.run(args + ["--cached-gatys-only"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    third = json.loads(out_json.read_text())["results"][0]
    assert [("gatys" in r, "ratio" in r) for r in third["rows"]] == [(True, True), (True, True), (False, False)]
    assert third["summary"]["photos"] == 3 and third["summary"]["gatys_photos"] == 2
    assert third["summary"]["style_ratio"] == pytest.approx(result["summary"]["style_ratio"])
    assert "Gatys reference on 2 of them" in out_md.read_text()
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == files
    # an older cache entry without a curve gives ratios but no iteration count; --gatys-curves redoes it
    # (this run also computes p2's reference, with its curve)
    first_json = sorted((tmp_path / "cache").glob("*.json"))[0]
    entry = json.loads(first_json.read_text())
    del entry["curve"]
    first_json.write_text(json.dumps(entry))
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(out_json.read_text())["results"][0]["summary"]
    assert (summary["gatys_photos"], summary["style_gatys_iters_photos"]) == (3, 2)
    proc = subprocess.run(args + ["--gatys-curves"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(out_json.read_text())["results"][0]["summary"]["style_gatys_iters_photos"] == 3
    assert "curve" in json.loads(first_json.read_text())


def test_equivalent_iterations_interpolates_the_style_curve():
    from mxstyle import evaluation as ev

    curve = [dict(iter=0, style=1000.0), dict(iter=10, style=100.0), dict(iter=20, style=10.0)]
    assert ev.equivalent_iterations(curve, 2000.0) == 0.0       # the photo itself is already there
    assert ev.equivalent_iterations(curve, 100.0) == 10.0
    assert ev.equivalent_iterations(curve, 10 ** 1.5) == 15.0   # halfway in log(loss)
    assert ev.equivalent_iterations(curve, 1.0) is None         # beyond the last iteration
    assert ev.median([3, 1, 2]) == 2 and ev.median([4, 1]) == 2.5 and ev.median([]) is None


def test_summary_rows_replace_their_models_and_keep_the_others(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("intro\n" + ev.SUMMARY_BEGIN + "\n| model | photos | style |\n|---|---|---|\n"
                   "| `old` (johnson) | 7 (1) | 9.0x |\n| `again` (johnson) | 7 (2) | 5.0x |\n" + ev.SUMMARY_END + "\nend\n")
    rows = [("model", "photos", "new column", "style"), ("`again` (johnson)", "7 (7)", "1.1x", "4.0x")]
    text = ev.summary_block(doc, rows)
    table = text.split(ev.SUMMARY_BEGIN)[1].split(ev.SUMMARY_END)[0].strip().splitlines()
    assert table == ["| model | photos | new column | style |", "|---|---|---|---|",
                     "| `again` (johnson) | 7 (7) | 1.1x | 4.0x |", "| `old` (johnson) | 7 (1) | - | 9.0x |"]
    assert text.startswith("intro\n") and text.endswith(ev.SUMMARY_END + "\nend\n")
    # the default model's row comes first, wherever it came from
    doc.write_text(text.replace("`old`", f"`{DEFAULT_MODEL}`"))
    table = ev.summary_block(doc, rows).split(ev.SUMMARY_BEGIN)[1].strip().splitlines()
    assert table[2].startswith(f"| `{DEFAULT_MODEL}`")


def test_curve_value_at_interpolates_between_iterations():
    from mxstyle import evaluation as ev

    curve = [dict(iter=0, c=0.0), dict(iter=10, c=100.0), dict(iter=20, c=50.0)]
    assert ev.curve_value_at(curve, 5.0, "c") == 50.0
    assert ev.curve_value_at(curve, 15.0, "c") == 75.0
    assert ev.curve_value_at(curve, 0.0, "c") == 0.0 and ev.curve_value_at(curve, 20, "c") == 50.0
    assert ev.curve_value_at(curve, None, "c") is None and ev.curve_value_at(curve, 25.0, "c") is None


def test_command_line_errors_are_one_line(tiny, tmp_path, random_vgg_file):
    def run(*extra):
        return subprocess.run([sys.executable, str(ROOT / "tools" / "evaluate.py"), *extra],
                              capture_output=True, text=True, timeout=300)

    proc = run("--model", str(tiny), "--photos", str(tmp_path / "none"))
    assert proc.returncode == 2 and "error: --photos" in proc.stderr and "Traceback" not in proc.stderr
    (tmp_path / "empty").mkdir()
    proc = run("--model", str(tiny), "--photos", str(tmp_path / "empty"))
    assert proc.returncode == 2 and "no images" in proc.stderr
    io.write_image(tmp_path / "p" / "a.png", photo(40, 40))
    proc = run("--model", str(tmp_path / "nomodel"), "--photos", str(tmp_path / "p"))
    assert proc.returncode == 2 and "not found" in proc.stderr
    # a document without the summary markers is refused before any evaluation, and left as it was
    (tmp_path / "doc.md").write_text("no markers here\n")
    proc = run("--model", str(tiny), "--photos", str(tmp_path / "p"), "--update-docs", str(tmp_path / "doc.md"))
    assert proc.returncode == 2 and "no summary markers" in proc.stderr and "Traceback" not in proc.stderr
    assert (tmp_path / "doc.md").read_text() == "no markers here\n"
    proc = run("--model", str(tiny), "--photos", str(tmp_path / "p"), "--cached-gatys-only", "--gatys-curves")
    assert proc.returncode == 2 and "--gatys-curves" in proc.stderr
