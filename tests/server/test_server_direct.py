"""The streaming routes served without Starlette's stack (chunkline.server.direct): errors as before."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from starlette.testclient import TestClient

from chunkline.server import app as app_module
from chunkline.server.app import create_app
from chunkline.server.settings import Settings

BODY = {"model": "echo", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
HEADERS = {"authorization": "Bearer sk-client-key"}


@pytest.fixture
def client() -> Any:
    # Nothing is sent upstream in these tests: every request fails before it would be.
    with TestClient(create_app(Settings(upstream="http://127.0.0.1:9")), raise_server_exceptions=False) as c:
        yield c


def test_an_unexpected_error_is_a_500_with_the_request_id_and_a_log_line(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(body: Any, settings: Settings) -> Any:
        raise RuntimeError("boom with sk-client-key in it")

    monkeypatch.setattr(app_module, "translate_request", broken)
    with caplog.at_level(logging.ERROR, logger="chunkline.server"):
        response = client.post("/v1/chat/completions", json=BODY, headers=HEADERS)
    assert response.status_code == 500
    assert response.json()["error"] == {
        "message": "The server had an error processing your request.",
        "type": "server_error",
        "param": None,
        "code": None,
    }
    assert response.headers["x-request-id"].startswith("req_")
    logged = [r.getMessage() for r in caplog.records if r.name == "chunkline.server"]
    assert any("unexpected error on POST /v1/chat/completions" in line for line in logged)
    assert all("sk-client-key" not in line for line in logged)  # the client's key, redacted


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/responses"])
def test_a_request_the_route_refuses_gets_its_error(client: TestClient, path: str) -> None:
    response = client.post(
        path, content=b"{not json", headers={**HEADERS, "content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert response.headers["x-request-id"].startswith("req_")


def test_other_methods_and_paths_still_go_through_starlette(client: TestClient) -> None:
    assert client.get("/v1/chat/completions", headers=HEADERS).status_code == 405
    # Starlette's own redirect of a trailing slash, as before.
    slashed = client.post("/v1/chat/completions/", json=BODY, headers=HEADERS, follow_redirects=False)
    assert slashed.status_code == 307
    assert client.get("/healthz").json()["status"] == "ok"
