"""``mxstyle serve``: every endpoint, every error path, a real uvicorn on a loopback port with a
``tritonclient.http`` client, and the web page in headless Chromium. The models are the tiny
random export of conftest (and, for the page, the fastest shipped model)."""
import base64
import concurrent.futures
import contextlib
import dataclasses
import json
import logging
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

for _module in ("starlette", "uvicorn", "python_multipart", "prometheus_client"):
    pytest.importorskip(_module, reason='the serve extra is not installed: pip install -e ".[serve]"')

from starlette.testclient import TestClient  # noqa: E402

from mxstyle import io  # noqa: E402
from mxstyle import model_folder as cards  # noqa: E402
from mxstyle.runtime import Stylizer  # noqa: E402
from mxstyle.serve import create_app  # noqa: E402
from mxstyle.serve.inference import Busy, InferencePool  # noqa: E402
from tiny_model import photo  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "mxstyle" / "samples" / "chelsea.jpg"
UPLOAD_LIMIT = 256 * 1024
PIXEL_LIMIT = 250_000


def wait_for(predicate, timeout=20.0, what="the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"{what} did not happen within {timeout} s")


def png(image):
    return io.encode_image(image, ".png")


def decoded(data):
    return io.read_image(data)


@pytest.fixture(scope="module")
def tiny(tiny_export):
    return tiny_export("johnson_lite")[1]


@pytest.fixture(scope="module")
def reference(tiny):
    return Stylizer(tiny)


@pytest.fixture(scope="module")
def client(tiny):
    app = create_app(models=(str(tiny),), workers=1, max_queue=1, timeout=60,
                     max_upload_mb=UPLOAD_LIMIT / 2 ** 20, max_pixels=PIXEL_LIMIT)
    with TestClient(app) as c:
        models = app.state.service.models
        assert models.ready_event.wait(120) and models.ready, models.error
        yield c


@pytest.fixture
def service(client):
    service = client.app.state.service
    yield service
    wait_for(lambda: service.pool.admitted == 0, what="the pool emptying")


@contextlib.contextmanager
def occupied(pool, jobs):
    """Hold ``jobs`` places of the pool (the first ``workers`` of them running) until the block ends."""
    release, started = threading.Event(), threading.Semaphore(0)

    def hold():
        started.release()
        release.wait(60)

    futures = [pool.submit(hold) for _ in range(jobs)]
    try:
        for _ in range(min(jobs, pool.workers)):
            assert started.acquire(timeout=20)
        yield futures
    finally:
        release.set()
        concurrent.futures.wait(futures, timeout=60)
        wait_for(lambda: pool.admitted == 0, what="the held places being released")


def asgi_call(client, path, headers, messages, method="POST", query=b""):
    """Run the app on hand-made ASGI messages in the TestClient's event loop; returns the messages
    it sent and how many times it called receive. After ``messages``: a disconnect."""
    sent, calls = [], [0]
    source = iter(messages)

    async def receive():
        calls[0] += 1
        return next(source, {"type": "http.disconnect"})

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query, "root_path": "",
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
             "client": ("127.0.0.1", 50000), "server": ("testserver", 80)}

    client.portal.call(client.app, scope, receive, send)
    return sent, calls[0]


def access_records(caplog, path):
    return [r.fields for r in caplog.records if r.name == "mxstyle.serve.access" and r.fields["path"] == path]


# ------------------------------------------------------------------------------ endpoints

def test_health_readiness_info_and_the_page(client, tiny):
    assert client.get("/healthz").json() == {"status": "ok", "state": "ready"}
    assert client.get("/readyz").json() == {"ready": True, "state": "ready"}
    info = client.get("/v1/info").json()
    assert info["models"] == ["tiny"] and info["default_model"] == "tiny" and info["workers"] == 1
    assert info["limits"] == {"max_upload_bytes": UPLOAD_LIMIT, "max_pixels": PIXEL_LIMIT, "timeout_seconds": 60}
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for asset in ("/static/app.js", "/static/style.css"):
        assert asset in page.text
        assert client.get(asset).status_code == 200
    for text in (page.text, client.get("/static/app.js").text, client.get("/static/style.css").text):
        assert "http://" not in text and "https://" not in text  # nothing from a CDN: machines may be offline


def test_models_list_names_architecture_style_and_serves_the_thumbnails(client, tiny, reference):
    body = client.get("/v1/models").json()
    assert body["default"] == "tiny"
    [model] = body["models"]
    card = cards.read_card(tiny)
    assert model["name"] == "tiny" and model["arch"] == card["arch"] == "johnson_lite"
    assert model["backend"] == f"{reference.backend} {reference.precision}"  # what Stylizer picks here
    assert set(model["style"]) == {"title", "source", "license"}
    thumbnail = client.get(model["thumbnail"])
    assert thumbnail.status_code == 200 and thumbnail.headers["content-type"] == "image/jpeg"
    style = decoded(client.get(model["style_image"]).content)
    small = decoded(thumbnail.content)
    assert max(small.shape[:2]) <= 256 and small.shape[0] / small.shape[1] == pytest.approx(
        style.shape[0] / style.shape[1], rel=0.05)
    assert client.get("/v1/models/nope/thumbnail.jpg").status_code == 404


def test_stylize_a_raw_body_gives_what_the_library_gives(client, reference):
    data = png(photo(72, 96, seed=3))
    response = client.post("/v1/stylize?format=png", content=data, headers={"content-type": "image/png"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-mxstyle-model"] == "tiny"
    assert response.headers["x-mxstyle-backend"] == f"{reference.backend} {reference.precision}"
    assert float(response.headers["x-mxstyle-seconds"]) > 0
    got = decoded(response.content)
    want = np.rint(reference.stylize(data))
    assert got.shape == want.shape == (72, 96, 3)
    assert np.abs(got - want).max() <= 1 and np.abs(got - want).mean() < 0.05
    assert np.abs(got - decoded(data)).mean() > 5  # painted, not the photo


def test_stylize_multipart_fields_reach_the_stylizer(client, reference):
    image = photo(64, 80, seed=4)
    data = png(image)
    files = {"image": ("holiday photo.png", data, "image/png")}
    same = client.post("/v1/stylize", files=files, data={"strength": "0", "format": "png"})
    assert same.status_code == 200 and np.array_equal(decoded(same.content), decoded(data))
    assert 'filename="holiday photo_tiny.png"' in same.headers["content-disposition"]
    kept = client.post("/v1/stylize", files=files, data={"preserve_colors": "on", "format": "png", "model": "tiny"})
    want = np.rint(reference.stylize(data, preserve_colors=True))
    assert np.abs(decoded(kept.content) - want).max() <= 1
    half = client.post("/v1/stylize?strength=0.5&format=png", files=files)  # query and form together
    assert np.abs(decoded(half.content) - np.rint(reference.stylize(data, strength=0.5))).max() <= 1
    for fmt, media in (("jpeg", "image/jpeg"), ("webp", "image/webp"), ("png", "image/png")):
        response = client.post("/v1/stylize", files=files, data={"format": fmt, "work_side": "full"})
        assert response.headers["content-type"] == media
        assert decoded(response.content).shape == image.shape
    low = client.post("/v1/stylize", files=files, data={"quality": "10"})
    high = client.post("/v1/stylize", files=files, data={"quality": "100"})
    assert len(low.content) < len(high.content)


def _truncated_jpeg():
    data = io.encode_image(photo(96, 128), ".jpg")
    return data[: len(data) // 2]


def _big_flat_png():  # over PIXEL_LIMIT, but a tiny file
    return png(np.full((600, 500, 3), 120, np.float32))


BAD_REQUESTS = [
    ("random bytes", dict(content=bytes(np.random.RandomState(0).randint(0, 256, 3000, dtype=np.uint8))), 422,
     "not an image"),
    ("truncated JPEG", dict(content=_truncated_jpeg()), 422, "truncated JPEG file"),
    ("over the pixel limit", dict(content=_big_flat_png()), 422, "300,000 pixels, over the limit of 250,000"),
    ("empty body", dict(content=b""), 400, "no image"),
    ("unknown model in the query", dict(params={"model": "nope"}, content=b"x"), 404, "model 'nope' is not served"),
    ("unknown model in the form", dict(files={"image": ("a.png", b"x")}, data={"model": "nope"}), 404,
     "model 'nope' is not served"),
    ("strength over 1", dict(params={"strength": "2"}, content=b"x"), 422, "strength must be a number from 0 to 1"),
    ("strength not a number", dict(files={"image": ("a.png", b"x")}, data={"strength": "lots"}), 422,
     "strength must be a number from 0 to 1, got 'lots'"),
    ("strength NaN", dict(params={"strength": "nan"}, content=b"x"), 422, "strength must be a number"),
    ("unknown format", dict(params={"format": "gif"}, content=b"x"), 422, "format must be jpeg, png or webp"),
    ("bad quality", dict(params={"quality": "0"}, content=b"x"), 422, "quality must be an integer from 1 to 100"),
    ("bad work side", dict(params={"work_side": "8"}, content=b"x"), 422,
     "work_side must be an integer of at least 16"),
    ("bad preserve_colors", dict(params={"preserve_colors": "maybe"}, content=b"x"), 422,
     "preserve_colors must be true or false"),
    ("unknown parameter", dict(params={"strenght": "1"}, content=b"x"), 422, "unknown parameter 'strenght'"),
    ("a form without an image", dict(files={"notes": (None, "hello")}), 400, "the form has no image"),
    ("two images", dict(files=[("image", ("a.png", b"x")), ("photo", ("b.png", b"y"))]), 400, "more than one file"),
    ("a multipart type without a boundary", dict(content=b"x", headers={"content-type": "multipart/form-data"}),
     400, "without a boundary"),
]


@pytest.mark.parametrize("what, request_kwargs, status, message", BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS])
def test_bad_requests_get_a_one_line_json_error(client, service, what, request_kwargs, status, message):
    response = client.post("/v1/stylize", **request_kwargs)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert message in error and "\n" not in error and "Traceback" not in error


def test_an_image_error_names_the_uploaded_file(client):
    response = client.post("/v1/stylize", files={"image": ("cut.jpg", _truncated_jpeg(), "image/jpeg")})
    assert response.status_code == 422
    assert response.json()["error"].startswith("cut.jpg: truncated JPEG file")


def test_an_upload_over_the_limit_gets_413_before_its_body_is_read(client, service):
    big = b"\xff\xd8\xff" + bytes(UPLOAD_LIMIT)
    response = client.post("/v1/stylize", content=big)
    assert response.status_code == 413 and "over the limit of 0.25 MB" in response.json()["error"]
    sent, reads = asgi_call(client, "/v1/stylize", {"content-length": str(UPLOAD_LIMIT + 1)},
                            [{"type": "http.request", "body": b"x" * 1000, "more_body": True}])
    assert sent[0]["status"] == 413 and reads == 0  # refused from the header alone


def test_a_streamed_upload_is_cut_off_at_the_limit_without_reading_the_rest(client, service):
    chunk = 64 * 1024
    endless = ({"type": "http.request", "body": b"\0" * chunk, "more_body": True} for _ in range(10_000))
    sent, reads = asgi_call(client, "/v1/stylize", {"content-type": "application/octet-stream"}, endless)
    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"])["error"].startswith("the upload is over the limit")
    assert reads <= UPLOAD_LIMIT // chunk + 1  # 625 MB were on offer; it read 256 KB and one chunk
    multipart = ({"type": "http.request", "body": b"--b\r\nContent-Disposition: form-data; name=\"image\"; "
                  b"filename=\"a.png\"\r\n\r\n" if i == 0 else b"\0" * chunk, "more_body": True} for i in range(10_000))
    sent, reads = asgi_call(client, "/v1/stylize", {"content-type": "multipart/form-data; boundary=b"}, multipart)
    assert sent[0]["status"] == 413 and reads <= UPLOAD_LIMIT // chunk + 2


def test_a_full_queue_gets_503_with_retry_after_and_health_still_answers(client, service):
    data = png(photo(40, 48))
    with occupied(service.pool, service.pool.capacity):  # one running, one queued: full
        response = client.post("/v1/stylize", content=data)
        assert response.status_code == 503
        assert int(response.headers["retry-after"]) >= 1
        assert "busy" in response.json()["error"]
        assert client.get("/healthz").status_code == 200  # inference is off the event loop
        metrics = client.get("/metrics").text
        assert "mxstyle_inference_queue_depth 1.0" in metrics
        assert "mxstyle_inference_in_flight 1.0" in metrics
        v2 = client.post("/v2/models/tiny/infer", json={
            "inputs": [{"name": "image", "datatype": "BYTES", "shape": [1],
                        "data": [base64.b64encode(data).decode()]}]})
        assert v2.status_code == 503 and "retry-after" in v2.headers
    assert client.post("/v1/stylize", content=data).status_code == 200  # and it recovers


def test_admission_is_bounded_and_queued_jobs_can_be_cancelled():
    pool = InferencePool(1, 1)
    try:
        release = threading.Event()
        first, second = pool.submit(lambda: release.wait(30)), pool.submit(lambda: "ran")
        with pytest.raises(Busy) as busy:
            pool.submit(lambda: "never")
        assert busy.value.retry_after >= 1 and pool.counts["rejected"] == 1
        assert second.cancel()  # still queued behind the first
        wait_for(lambda: pool.admitted == 1)
        third = pool.submit(lambda: "third")  # the cancelled one's place is free again
        release.set()
        assert first.result(30) is True and third.result(30) == "third"
        wait_for(lambda: pool.admitted == 0)
        assert pool.counts["cancelled"] == 1 and pool.counts["done"] == 2
    finally:
        pool.shutdown()


def test_a_request_past_its_timeout_gets_504_and_its_queued_job_never_runs(client, service, monkeypatch):
    monkeypatch.setattr(service, "options", dataclasses.replace(service.options, timeout=0.3))
    cancelled = service.pool.counts["cancelled"]
    with occupied(service.pool, 1):  # the one worker is busy: the request waits in the queue
        response = client.post("/v1/stylize", content=png(photo(40, 48)))
        assert response.status_code == 504
        assert "did not finish within the 0.3 s limit" in response.json()["error"]
        wait_for(lambda: service.pool.counts["cancelled"] == cancelled + 1, what="the queued job being cancelled")


def test_a_client_that_disconnects_mid_upload_costs_nothing(client, service, caplog):
    caplog.set_level(logging.INFO, logger="mxstyle.serve.access")
    counts = dict(service.pool.counts)
    sent, _ = asgi_call(client, "/v1/stylize", {"content-length": "50000", "content-type": "image/png"},
                        [{"type": "http.request", "body": b"\x89PNG" + b"\0" * 996, "more_body": True}])
    assert sent == []  # nothing is written to a connection that is gone
    assert service.pool.counts == counts and service.pool.admitted == 0  # no job was made
    [entry] = wait_for(lambda: access_records(caplog, "/v1/stylize"))
    assert entry["status"] == 499 and entry["client_gone"] is True and entry["bytes_in"] == 1000


def test_a_client_that_goes_away_while_queued_has_its_job_cancelled(client, service):
    gone = service.pool.counts["gone"]
    with occupied(service.pool, 1):
        body = png(photo(40, 48))
        sent, _ = asgi_call(client, "/v1/stylize", {"content-length": str(len(body))},
                            [{"type": "http.request", "body": body, "more_body": False}])
        assert sent == []
        assert service.pool.counts["gone"] == gone + 1
        wait_for(lambda: service.pool.admitted == 1, what="the abandoned job leaving the queue")


def test_an_unexpected_error_is_a_json_500_and_the_traceback_goes_to_the_log(client, service, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="mxstyle.serve")
    model = service.models.get("tiny")

    def broken(*args, **kwargs):
        raise RuntimeError("the engine fell over")

    monkeypatch.setattr(model.stylizer, "stylize", broken)
    response = client.post("/v1/stylize", content=png(photo(40, 48)), headers={"x-request-id": "req-42"})
    assert response.status_code == 500 and response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error.startswith("internal error (RuntimeError)") and "req-42" in error
    assert "Traceback" not in response.text and "fell over" not in response.text
    logged = wait_for(lambda: [r for r in caplog.records if r.name == "mxstyle.serve" and r.exc_info])
    assert "the engine fell over" in logged[0].fields["error"] and logged[0].fields["request_id"] == "req-42"
    monkeypatch.undo()
    assert client.post("/v1/stylize", content=png(photo(40, 48))).status_code == 200


def test_unknown_routes_and_methods_answer_json(client):
    assert client.get("/v9/nothing").json() == {"error": "no such endpoint: GET /v9/nothing"}
    response = client.get("/v1/stylize")
    assert response.status_code == 405 and "GET is not allowed" in response.json()["error"]


def test_every_request_is_one_json_access_line(client, caplog):
    caplog.set_level(logging.INFO, logger="mxstyle.serve.access")
    client.post("/v1/stylize", content=png(photo(40, 48)), headers={"x-request-id": "abc123"})
    client.get("/healthz")
    stylized = wait_for(lambda: access_records(caplog, "/v1/stylize"))
    assert len(stylized) == 1
    entry = stylized[0]
    assert entry["request_id"] == "abc123" and entry["status"] == 200 and entry["model"] == "tiny"
    assert entry["route"] == "/v1/stylize" and entry["bytes_out"] > 0 and entry["seconds"] > 0
    assert len(wait_for(lambda: access_records(caplog, "/healthz"))) == 1
    from mxstyle.serve.observe import JsonFormatter

    line = JsonFormatter().format(next(r for r in caplog.records if r.name == "mxstyle.serve.access"))
    assert "\n" not in line and json.loads(line)["request_id"] == "abc123"


def _metric(text, name, **labels):
    for line in text.splitlines():
        if line.startswith(name + ("{" if labels else " ")) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_requests_by_status_and_time_them(client, service):
    before = client.get("/metrics").text
    client.post("/v1/stylize", content=png(photo(40, 48)))
    client.post("/v1/stylize", content=b"not an image")

    def counted():  # the count is taken once the response has gone out
        text = client.get("/metrics").text
        done = _metric(text, "mxstyle_http_requests_total", route="/v1/stylize", status="422") > _metric(
            before, "mxstyle_http_requests_total", route="/v1/stylize", status="422")
        return text if done else None

    after = wait_for(counted, what="the metrics counting the requests")
    assert client.get("/metrics").headers["content-type"].startswith("text/plain")
    for status in ("200", "422"):
        assert _metric(after, "mxstyle_http_requests_total", route="/v1/stylize", method="POST", status=status) == \
            _metric(before, "mxstyle_http_requests_total", route="/v1/stylize", method="POST", status=status) + 1
    assert _metric(after, "mxstyle_http_request_duration_seconds_count", route="/v1/stylize") >= 2
    assert _metric(after, "mxstyle_inference_seconds_count", model="tiny") > _metric(
        before, "mxstyle_inference_seconds_count", model="tiny")
    for gauge in ("mxstyle_inference_queue_depth", "mxstyle_inference_in_flight", "mxstyle_http_requests_in_flight"):
        assert gauge + " " in after
    assert _metric(after, "mxstyle_ready") == 1.0 and _metric(after, "mxstyle_inference_capacity") == 2.0


def test_nothing_is_ready_before_the_models_have_loaded(tiny):
    app = create_app(models=(str(tiny),), workers=1)
    client = TestClient(app)  # not entered: the lifespan, which loads the models, never runs
    assert client.get("/healthz").json()["state"] == "loading"
    assert client.get("/readyz").status_code == 503
    assert client.get("/v2/health/ready").status_code == 503
    assert client.get("/v2/models/tiny/ready").json() == {"name": "tiny", "ready": False}
    response = client.post("/v1/stylize", content=png(photo(40, 48)))
    assert response.status_code == 503 and response.headers["retry-after"] == "2"
    assert "still loading" in response.json()["error"]
    app.state.service.pool.shutdown()


def test_a_model_that_fails_to_load_keeps_the_service_unready(tiny, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny, broken)
    for onnx_file in broken.glob("*.onnx"):
        onnx_file.write_bytes(onnx_file.read_bytes()[:-10] + b"tampered!!")
    app = create_app(models=(str(broken),), workers=1, backend="onnxruntime")
    with TestClient(app) as client:
        assert app.state.service.models.ready_event.wait(60)
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "sha256 mismatch" in ready.json()["error"]
        assert client.get("/healthz").status_code == 503
        assert "failed to load" in client.post("/v1/stylize", content=b"x").json()["error"]


def test_an_unknown_model_or_bad_option_stops_the_command_with_one_line(tmp_path):
    for args, message in ((["--models", "no-such-model"], "error: model 'no-such-model' not found"),
                          (["--max-queue", "-1"], "error: max-queue must be an integer of at least 0")):
        proc = subprocess.run([sys.executable, "-m", "mxstyle", "serve", *args, "--port", "0"], capture_output=True,
                              text=True, timeout=120, cwd=tmp_path)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.strip().splitlines()[-1].startswith(message)


def test_importing_the_package_loads_no_http_stack():
    code = "import sys, mxstyle.serve, mxstyle.cli.serve; print(sorted(m for m in sys.modules if m.split('.')[0] in " \
           "('starlette', 'uvicorn', 'prometheus_client', 'mxnet')))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stderr


# ------------------------------------------------------------------ Open Inference Protocol

def test_oip_health_and_metadata(client):
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get("/v2").json()["extensions"] == ["binary_tensor_data"]
    meta = client.get("/v2/models/tiny").json()
    assert meta["name"] == "tiny" and meta["versions"] == ["1"]
    assert meta["inputs"] == [{"name": "image", "datatype": "BYTES", "shape": [-1]}]
    assert meta["outputs"] == [{"name": "stylized", "datatype": "BYTES", "shape": [-1]}]
    assert client.get("/v2/models/tiny/versions/1").json() == meta
    assert client.get("/v2/models/tiny/versions/1/ready").json() == {"name": "tiny", "ready": True}
    assert client.get("/v2/models/tiny/versions/2").status_code == 404
    assert client.get("/v2/models/nope").status_code == 404


def test_oip_infer_in_binary_and_json_forms(client, reference):
    httpclient = pytest.importorskip("tritonclient.http")
    images = [png(photo(48, 64, seed=s)) for s in (5, 6)]
    want = [np.rint(reference.stylize(d, strength=0.75)) for d in images]
    tensor = httpclient.InferInput("image", [2], "BYTES")
    tensor.set_data_from_numpy(np.array(images, dtype=np.object_), binary_data=True)
    body, json_size = httpclient.InferenceServerClient.generate_request_body(
        [tensor], request_id="r1", parameters={"strength": 0.75, "format": "png"})
    response = client.post("/v2/models/tiny/infer", content=body,
                           headers={"Inference-Header-Content-Length": str(json_size)})
    assert response.status_code == 200, response.text
    result = httpclient.InferenceServerClient.parse_response_body(
        response.content, header_length=int(response.headers["inference-header-content-length"]))
    got = result.as_numpy("stylized")
    assert got.shape == (2,) and result.get_response()["id"] == "r1"
    for data, expected in zip(got, want):
        assert np.abs(decoded(data) - expected).max() <= 1
    as_json = client.post("/v2/models/tiny/versions/1/infer", json={
        "inputs": [{"name": "image", "datatype": "BYTES", "shape": [1],
                    "data": [base64.b64encode(images[0]).decode()]}],
        "parameters": {"strength": 0.75, "format": "png"}})
    assert as_json.status_code == 200 and as_json.headers["content-type"] == "application/json"
    [output] = as_json.json()["outputs"]
    assert output["name"] == "stylized" and output["shape"] == [1]
    assert np.abs(decoded(base64.b64decode(output["data"][0])) - want[0]).max() <= 1


_SHORT_BODY_HEADER = (b'{"inputs":[{"name":"image","datatype":"BYTES","shape":[1],'
                      b'"parameters":{"binary_data_size":50}}]}')

OIP_ERRORS = [
    ("unknown model", "/v2/models/nope/infer", dict(json={}), 404, "model 'nope' is not served"),
    ("not JSON", "/v2/models/tiny/infer", dict(content=b"\x00\x01"), 400, "not JSON"),
    ("no inputs", "/v2/models/tiny/infer", dict(json={"inputs": []}), 400, "no inputs"),
    ("wrong input name", "/v2/models/tiny/infer",
     dict(json={"inputs": [{"name": "INPUT0", "datatype": "BYTES", "shape": [1], "data": ["eA=="]}]}), 400,
     "unknown input 'INPUT0'"),
    ("wrong datatype", "/v2/models/tiny/infer",
     dict(json={"inputs": [{"name": "image", "datatype": "FP32", "shape": [1], "data": [1.0]}]}), 400,
     "must have datatype BYTES"),
    ("not base64", "/v2/models/tiny/infer",
     dict(json={"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": ["@@@"]}]}), 400,
     "not valid base64"),
    ("shape and data disagree", "/v2/models/tiny/infer",
     dict(json={"inputs": [{"name": "image", "datatype": "BYTES", "shape": [2], "data": ["eA=="]}]}), 400,
     "holds 1 elements"),
    ("header longer than the body", "/v2/models/tiny/infer",
     dict(content=b"{}", headers={"Inference-Header-Content-Length": "99"}), 400, "does not fit"),
    ("binary size past the body", "/v2/models/tiny/infer",
     dict(content=_SHORT_BODY_HEADER + b"\0" * 10,
          headers={"Inference-Header-Content-Length": str(len(_SHORT_BODY_HEADER))}), 400,
     "binary_data_size 50 of input 'image' does not fit the 10 bytes"),
    ("unknown output", "/v2/models/tiny/infer",
     dict(json={"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": ["eA=="]}],
                "outputs": [{"name": "logits"}]}), 400, "unknown output 'logits'"),
    ("not an image", "/v2/models/tiny/infer",
     dict(json={"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": ["eHh4eHh4"]}]}), 422,
     "image[0]: not an image"),
    ("bad strength", "/v2/models/tiny/infer",
     dict(json={"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": ["eA=="]}],
                "parameters": {"strength": 3}}), 422, "strength must be a number from 0 to 1"),
    ("wrong version", "/v2/models/tiny/versions/7/infer", dict(json={}), 404, "has no version '7'"),
]


@pytest.mark.parametrize("what, path, request_kwargs, status, message", OIP_ERRORS, ids=[e[0] for e in OIP_ERRORS])
def test_oip_errors_are_json_with_the_right_status(client, service, what, path, request_kwargs, status, message):
    response = client.post(path, **request_kwargs)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


# ------------------------------------------------------------------------ Triton export

def test_triton_repository_parses_against_triton_schema_and_its_model_runs(tiny, tmp_path, reference):
    from mxstyle.cli import triton as triton_cli
    from mxstyle.triton_repo import parse_config

    pytest.importorskip("tritonclient.grpc.model_config_pb2", reason="tritonclient[grpc] holds Triton's schema")
    triton_cli.main([str(tiny), "--out", str(tmp_path / "repo"), "--threads", "2", "--instances", "2"])
    folder = tmp_path / "repo" / "tiny"
    config = parse_config((folder / "config.pbtxt").read_text())
    assert config.name == "tiny" and config.platform == "onnxruntime_onnx" and config.max_batch_size == 0
    assert [(t.name, list(t.dims)) for t in config.input] == [("data", [-1, 3, -1, -1])]
    assert [(t.name, list(t.dims)) for t in config.output] == [("stylized", [-1, 3, -1, -1])]
    from tritonclient.grpc import model_config_pb2 as schema

    assert config.input[0].data_type == config.output[0].data_type == schema.TYPE_FP32
    assert config.instance_group[0].count == 2
    assert config.instance_group[0].kind == schema.ModelInstanceGroup.KIND_CPU
    assert config.parameters["intra_op_thread_count"].string_value == "2"
    card = cards.read_card(tiny)
    model_bytes = (folder / "1" / "model.onnx").read_bytes()
    assert model_bytes == (tiny / card["files"]["onnx_int8"]["path"]).read_bytes()
    meta = json.loads((folder / "mxstyle.json").read_text())
    assert meta["stride"] == card["stride"] and meta["role"] == "onnx_int8"

    import onnxruntime as ort

    image = photo(48, 64, seed=9)  # multiples of the stride: no padding needed
    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    out = session.run([config.output[0].name], {config.input[0].name: io.to_tensor(image)})[0]
    library = Stylizer(tiny, backend="onnxruntime", precision="int8").stylize(image)
    assert np.abs(np.clip(io.from_tensor(out), 0, 255) - library).max() < 0.05


def test_triton_config_with_batching_and_a_bad_config_is_refused(tiny, tmp_path):
    pytest.importorskip("tritonclient.grpc.model_config_pb2", reason="tritonclient[grpc] holds Triton's schema")
    from mxstyle.errors import ConfigError
    from mxstyle.triton_repo import parse_config, write_triton_model

    folder = write_triton_model(tiny, tmp_path, precision="fp32", max_batch_size=4, name="tiny_fp32")
    config = parse_config((folder / "config.pbtxt").read_text())
    assert config.max_batch_size == 4 and list(config.input[0].dims) == [3, -1, -1]
    assert config.HasField("dynamic_batching")
    assert (folder / "1" / "model.onnx").read_bytes() == (tiny / "tiny.onnx").read_bytes()
    with pytest.raises(ConfigError, match="not a valid Triton model configuration"):
        parse_config('name: "x"\nplatform: "onnxruntime_onnx"\ninput [ { name: "data" data_type: TYPE_FLOAT32 } ]\n')
    with pytest.raises(ConfigError, match="not a valid Triton model configuration"):
        parse_config('name: "x"\nmax_batch: 0\n')
    with pytest.raises(ConfigError, match="Triton model name"):
        write_triton_model(tiny, tmp_path, name="no spaces")


def test_export_writes_a_triton_entry_too(tiny_export, tmp_path):
    from mxstyle.cli import export as export_cli

    _, _, run = tiny_export("johnson_lite")
    export_cli.main([str(run), "--name", "again", "--out", str(tmp_path / "again"), "--triton", str(tmp_path / "repo"),
                     "--no-progress"])
    assert (tmp_path / "repo" / "again" / "config.pbtxt").read_text().count('platform: "onnxruntime_onnx"') == 1
    assert (tmp_path / "repo" / "again" / "1" / "model.onnx").read_bytes() == \
        (tmp_path / "again" / "again.onnx").read_bytes()


# ------------------------------------------------------------------------ a real server

def fastest_shipped_model():
    names = [n for n in cards.list_available_models() if n != "tiny"]
    cost = lambda n: cards.read_card(cards.resolve_model_dir(n)).get("flops_per_pixel") or math.inf  # noqa: E731
    return min(names, key=cost) if names else None


class LiveServer:
    def __init__(self, proc, url, lines):
        self.proc, self.url, self.lines = proc, url, lines
        self.host, self.port = url.rsplit("//", 1)[1].rsplit(":", 1)
        self.port = int(self.port)

    def get(self, path):
        try:
            with urllib.request.urlopen(self.url + path, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def log(self, **match):
        return [e for e in self.lines if all(e.get(k) == v for k, v in match.items())]


@pytest.fixture(scope="module")
def live_server(tiny):
    shipped = [n for n in cards.list_available_models() if n != "tiny"] if os.environ.get("MXSTYLE_SCREENSHOTS") \
        else [n for n in [fastest_shipped_model()] if n]  # the README's pictures show every shipped style
    models = shipped + [str(tiny)]
    proc = subprocess.Popen([sys.executable, str(ROOT / "tools" / "serve.py"), "--models", *models, "--port", "0",
                             "--workers", "2", "--max-queue", "4"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    lines, raw = [], []

    def read():
        for line in proc.stderr:
            raw.append(line)
            with contextlib.suppress(ValueError):
                lines.append(json.loads(line))

    threading.Thread(target=read, daemon=True).start()
    try:
        listening = wait_for(lambda: [e for e in lines if e.get("event") == "listening"] or proc.poll() is not None,
                             timeout=120, what="the server listening")
        assert proc.poll() is None, "".join(raw)
        server = LiveServer(proc, listening[0]["url"], lines)
        wait_for(lambda: server.get("/readyz")[0] == 200, timeout=120, what="the server being ready")
        yield server
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert code == 0, "".join(raw[-20:])
    assert not [e for e in lines if e.get("level") == "error"], [e for e in lines if e.get("level") == "error"]


def test_a_real_server_answers_tritonclient(live_server, reference):
    httpclient = pytest.importorskip("tritonclient.http")
    client = httpclient.InferenceServerClient(url=f"{live_server.host}:{live_server.port}")
    try:
        assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("tiny")
        assert client.get_model_metadata("tiny")["inputs"][0]["datatype"] == "BYTES"
        data = png(photo(56, 72, seed=7))
        want = np.rint(reference.stylize(data))
        tensor = httpclient.InferInput("image", [1], "BYTES")
        tensor.set_data_from_numpy(np.array([data], dtype=np.object_), binary_data=True)
        result = client.infer("tiny", [tensor], parameters={"format": "png"})  # no outputs named: binary back
        [image] = result.as_numpy("stylized")
        assert np.abs(decoded(image) - want).max() <= 1
        as_text = httpclient.InferInput("image", [1], "BYTES")
        as_text.set_data_from_numpy(np.array([base64.b64encode(data)], dtype=np.object_), binary_data=False)
        wanted = [httpclient.InferRequestedOutput("stylized", binary_data=False)]
        result = client.infer("tiny", [as_text], outputs=wanted, parameters={"format": "png"}, model_version="1")
        [text] = result.as_numpy("stylized")
        assert np.abs(decoded(base64.b64decode(text)) - want).max() <= 1
        from tritonclient.utils import InferenceServerException

        with pytest.raises(InferenceServerException, match="not served"):
            client.infer("nope", [tensor])
    finally:
        client.close()
    assert live_server.log(event="request", route="/v2/models/{name}/infer", status=200)


def test_a_real_server_shrugs_off_a_client_that_hangs_up_mid_upload(live_server):
    with socket.create_connection((live_server.host, live_server.port), timeout=30) as sock:
        sock.sendall(b"POST /v1/stylize?model=tiny HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                     b"Content-Length: 200000\r\nX-Request-Id: hangs-up\r\n\r\n" + b"\x89PNG" + bytes(4000))
    [entry] = wait_for(lambda: live_server.log(request_id="hangs-up"), what="the access line of the hung-up request")
    assert entry["status"] == 499 and entry["bytes_in"] == 4004
    assert live_server.get("/healthz")[0] == 200
    status, body = live_server.get("/metrics")
    assert status == 200 and b'status="499"' in body


# ------------------------------------------------------------------------ the web page

def _chromium():
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (browser and driver):
        pytest.skip("headless Chromium is not installed (apt-get install chromium chromium-driver)")
    pytest.importorskip("selenium", reason="selenium is not installed (the test extra has it)")
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1280,900", "--force-device-scale-factor=1"):
        options.add_argument(flag)
    return webdriver.Chrome(service=webdriver.ChromeService(executable_path=driver), options=options)


def _screenshot(driver, path):
    driver.save_screenshot(str(path.with_suffix(".png")))
    io.write_image(path, io.read_image(path.with_suffix(".png")), quality=85)
    target = os.environ.get("MXSTYLE_SCREENSHOTS")  # where the README's pictures are made
    if target:
        shutil.copy(path, Path(target) / path.name)


@pytest.mark.browser
def test_the_web_page_in_headless_chromium(live_server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    style = fastest_shipped_model() or "tiny"
    driver = _chromium()
    try:
        wait = WebDriverWait(driver, 60)
        driver.get(live_server.url + "/")
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".style img")) >= 1 and d.execute_script(
            "return [...document.querySelectorAll('.style img')].every(i => i.complete && i.naturalWidth > 0)"))
        driver.find_element(By.ID, "photo").send_keys(str(SAMPLE))
        wait.until(lambda d: d.execute_script("const i = document.getElementById('before');"
                                              "return !i.hidden && i.complete && i.naturalWidth > 0"))
        _screenshot(driver, tmp_path / "serve_page_before.jpg")
        driver.find_element(By.CSS_SELECTOR, f'.style[data-model="{style}"]').click()
        wait.until(lambda d: d.execute_script(
            f"const i = document.getElementById('after'); return !i.hidden && i.complete && i.naturalWidth > 0 "
            f"&& i.dataset.model === '{style}'"))
        assert not driver.find_element(By.ID, "download").get_attribute("hidden")
        _screenshot(driver, tmp_path / "serve_page_after.jpg")
        driver.set_script_timeout(30)
        shown = base64.b64decode(driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "fetch(document.getElementById('after').src).then(r => r.arrayBuffer()).then(b => {"
            "  let s = ''; for (const c of new Uint8Array(b)) s += String.fromCharCode(c); done(btoa(s)); });"))
        want = io.read_image(io.encode_image(Stylizer(style).stylize(SAMPLE), ".jpg", 90))
        got = io.read_image(shown)
        assert got.shape == want.shape == io.read_image(SAMPLE).shape
        assert np.abs(got - want).mean() < 2.0
        assert np.abs(got - io.read_image(SAMPLE)).mean() > 10  # painted, not the photo

        not_a_photo = tmp_path / "notes.jpg"
        not_a_photo.write_bytes(b"these are my notes, not a photo")
        driver.find_element(By.ID, "photo").send_keys(str(not_a_photo))
        driver.find_element(By.ID, "go").click()
        wait.until(lambda d: "cannot be used" in d.find_element(By.ID, "message").text)
        assert "notes.jpg: not an image" in driver.find_element(By.ID, "message").text
    finally:
        driver.quit()
    assert live_server.log(event="request", route="/v1/stylize", status=200, model=style)
