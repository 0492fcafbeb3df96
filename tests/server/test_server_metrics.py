"""GET /metrics: Prometheus text read back with prometheus_client's own parser, after real requests."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fake_anthropic import FakeAnthropic
from prometheus_client.parser import text_string_to_metric_families
from serverkit import ServerThread, user

from chunkline.server.metrics import MAX_MODEL_LABELS, ModelLabels
from chunkline.server.settings import Settings


@pytest.fixture(scope="module")
def metered(upstream: FakeAnthropic) -> Iterator[ServerThread]:
    """A server of its own, so that the counts are only this module's requests."""
    server = ServerThread(Settings(upstream=upstream.url, model_aliases={"gpt-4o": "echo"})).start()
    yield server
    server.stop()


def _families(server: ServerThread) -> dict[str, Any]:
    response = server.http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {family.name: family for family in text_string_to_metric_families(response.text)}


def _settled(server: ServerThread, route: str, requests: int) -> dict[str, Any]:
    """The metrics once ``requests`` requests to ``route`` are counted: each is recorded as it
    ends, which may be just after its client has read the whole answer."""
    deadline = time.monotonic() + 5
    while True:
        families = _families(server)
        counted = sum(s.value for s in _samples(families["chunkline_requests"], "_total", http_route=route))
        if counted >= requests or time.monotonic() > deadline:
            return families
        time.sleep(0.02)


def _samples(family: Any, suffix: str, **labels: str) -> list[Any]:
    return [
        s
        for s in family.samples
        if s.name == family.name + suffix and all(s.labels.get(k) == v for k, v in labels.items())
    ]


def _value(family: Any, suffix: str, **labels: str) -> float:
    found = _samples(family, suffix, **labels)
    assert len(found) == 1, (suffix, labels, family.samples)
    return float(found[0].value)


def test_the_metrics_after_real_requests(metered: ServerThread) -> None:
    route = "/v1/chat/completions"
    # A streamed answer (through an alias), a whole one, an upstream error and a client error.
    stream = {"model": "gpt-4o", "messages": user("one two three four"), "stream": True}
    with metered.http.stream(
        "POST", "/v1/chat/completions", json=stream, headers={"Authorization": "Bearer k"}
    ) as r:
        assert b"".join(r.iter_raw()).endswith(b"data: [DONE]\n\n")
    assert metered.post_chat({"model": "echo", "messages": user("five six")}).status_code == 200
    assert metered.post_chat({"model": "status:429", "messages": user("x")}).status_code == 429
    assert metered.post_chat({"model": "echo"}).status_code == 400
    assert (
        metered.post_chat(
            {"model": "error-mid:llm_long_text:5", "messages": user("x"), "stream": True}
        ).status_code
        == 200
    )
    families = _settled(metered, route, 5)

    client = families["gen_ai_client_token_usage"]
    assert client.type == "histogram"
    # chunkline as the upstream's client: by the model that answered.
    assert (
        _value(
            client, "_count", gen_ai_token_type="input", gen_ai_response_model="claude-echo", http_route=route
        )
        == 2
    )
    assert (
        _value(
            client, "_sum", gen_ai_token_type="input", gen_ai_response_model="claude-echo", http_route=route
        )
        == 6
    )
    assert (
        _value(
            client, "_sum", gen_ai_token_type="output", gen_ai_response_model="claude-echo", http_route=route
        )
        == 6
    )
    # chunkline as a server: by the name its client used.
    server = families["gen_ai_server_token_usage"]
    assert (
        _value(server, "_sum", gen_ai_token_type="output", gen_ai_request_model="gpt-4o", http_route=route)
        == 4
    )
    assert (
        _value(server, "_sum", gen_ai_token_type="output", gen_ai_request_model="echo", http_route=route) == 2
    )

    duration = families["gen_ai_server_request_duration_seconds"]
    assert duration.type == "histogram"
    assert _value(duration, "_count", http_route=route, gen_ai_request_model="gpt-4o", error_type="") == 1
    assert (
        _value(
            duration,
            "_count",
            http_route=route,
            gen_ai_request_model="status:429",
            error_type="rate_limit_error",
        )
        == 1
    )
    first = families["gen_ai_server_time_to_first_token_seconds"]
    assert _value(first, "_count", http_route=route, gen_ai_request_model="gpt-4o") == 1

    requests = families["chunkline_requests"]
    assert requests.type == "counter"
    assert _value(requests, "_total", http_route=route, http_response_status_code="200", error_type="") == 2
    assert (
        _value(
            requests,
            "_total",
            http_route=route,
            http_response_status_code="429",
            error_type="rate_limit_error",
        )
        == 1
    )
    assert (
        _value(
            requests,
            "_total",
            http_route=route,
            http_response_status_code="400",
            error_type="invalid_request_error",
        )
        == 1
    )
    # A stream that began (200) and then faulted in-band is counted with its fault.
    assert (
        _value(
            requests, "_total", http_route=route, http_response_status_code="200", error_type="upstream_error"
        )
        == 1
    )

    assert _value(families["chunkline_streams_in_flight"], "", http_route=route) == 0
    connections = families["chunkline_upstream_connections"]
    assert {s.labels["state"] for s in connections.samples} == {"active", "idle"}
    assert sum(s.value for s in connections.samples) >= 1  # the pooled connection is kept
    assert _value(families["chunkline_upstream_connections_limit"], "") == 1000


def test_in_flight_streams_are_counted(metered: ServerThread) -> None:
    payload = {"model": "stall:2", "messages": user("hold on"), "stream": True}
    route = "/v1/chat/completions"
    with (
        httpx.Client(base_url=metered.url, timeout=10) as http,
        http.stream("POST", "/v1/chat/completions", json=payload, headers={"Authorization": "Bearer k"}) as r,
    ):
        # Held in a name: a generator dropped after its first item may be collected at any time,
        # and closing it closes the connection (the server then ends the stream, as it should).
        chunks = r.iter_raw()
        next(chunks)
        deadline = time.monotonic() + 5
        while (
            _value((families := _families(metered))["chunkline_streams_in_flight"], "", http_route=route) < 1
        ):
            assert time.monotonic() < deadline, families["chunkline_streams_in_flight"].samples
            time.sleep(0.02)
        assert _value(families["chunkline_streams_in_flight"], "", http_route=route) == 1
        assert _value(families["chunkline_upstream_connections"], "", state="active") >= 1
    deadline = time.monotonic() + 5
    while _value(_families(metered)["chunkline_streams_in_flight"], "", http_route=route) != 0:
        assert time.monotonic() < deadline, "the stream is still counted after its client left"
        time.sleep(0.02)


def test_model_labels_are_bounded(metered: ServerThread) -> None:
    labels = ModelLabels(limit=3)
    assert [labels(m) for m in ("a", "b", "a", "c", "d", None, "")] == [
        "a",
        "b",
        "a",
        "c",
        "other",
        "unknown",
        "unknown",
    ]
    assert ModelLabels()("bad name\nwith a newline") == "other"
    assert ModelLabels()("x" * 200) == "other"
    # Many made-up model names from clients (each a 404 upstream) add no series past the cap.
    for n in range(MAX_MODEL_LABELS + 10):
        metered.post_chat({"model": f"status:404:made-up-{n}", "messages": user("x")})
    families = _families(metered)
    models = {
        s.labels["gen_ai_request_model"] for s in families["gen_ai_server_request_duration_seconds"].samples
    }
    assert len(models) <= MAX_MODEL_LABELS + 1 and "other" in models
    names = {s.name for f in families.values() for s in f.samples}
    assert not any("key" in label for f in families.values() for s in f.samples for label in s.labels), names


def test_no_metrics(upstream: FakeAnthropic) -> None:
    server = ServerThread(Settings(upstream=upstream.url, metrics=False)).start()
    try:
        assert server.http.get("/metrics").status_code == 404
        assert server.post_chat({"model": "echo", "messages": user("still served")}).status_code == 200
    finally:
        server.stop()
