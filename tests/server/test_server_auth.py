"""Keys: the server's own keys or the client's passed through; 401s; keys never in logs, bodies or reprs."""

from __future__ import annotations

import logging
from typing import Any

import openai
import pytest
from fake_anthropic import FakeAnthropic
from serverkit import CLIENT_KEY, SERVER_KEY, UPSTREAM_KEY, ServerThread, accumulate, user

from chunkline.server.auth import _is_header_text, beta_header
from chunkline.server.errors import APIError
from chunkline.server.settings import Secret, Settings

SECRETS = (SERVER_KEY, UPSTREAM_KEY, CLIENT_KEY, "sk-second-key", "bad-key")


def test_server_keys_admit_a_client_and_send_the_upstream_key(
    keyed_proxy: ServerThread, upstream: FakeAnthropic
) -> None:
    marker = "keyed and admitted"
    with keyed_proxy.client(SERVER_KEY).chat.completions.create(
        model="echo", messages=user(marker), stream=True
    ) as stream:
        assert accumulate(stream)["content"] == marker
    assert upstream.find(marker).headers["x-api-key"] == UPSTREAM_KEY


def test_every_server_key_works_and_x_api_key_too(keyed_proxy: ServerThread, upstream: FakeAnthropic) -> None:
    second = keyed_proxy.client("sk-second-key").chat.completions.create(
        model="echo", messages=user("second")
    )
    assert second.choices[0].message.content == "second"
    response = keyed_proxy.http.post(
        "/v1/chat/completions",
        json={"model": "echo", "messages": user("by x-api-key")},
        headers={"x-api-key": SERVER_KEY},
    )
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "by x-api-key"


@pytest.mark.parametrize("stream", [True, False])
def test_a_wrong_server_key_is_a_401_that_never_reaches_the_upstream(
    keyed_proxy: ServerThread, upstream: FakeAnthropic, stream: bool
) -> None:
    before = len(upstream.requests)
    for wrong in (UPSTREAM_KEY, SERVER_KEY + "x", SERVER_KEY[:-1], "Bearer"):
        with pytest.raises(openai.AuthenticationError) as caught:
            keyed_proxy.client(wrong).chat.completions.create(
                model="echo", messages=user("no"), stream=stream
            )
        assert caught.value.status_code == 401
        assert caught.value.body == {
            "message": "Incorrect API key provided.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
        assert caught.value.response.headers["www-authenticate"] == 'Bearer realm="chunkline"'
    assert len(upstream.requests) == before


@pytest.mark.parametrize("proxy_name", ["keyed_proxy", "proxy"])
def test_a_missing_key_is_a_401(request: pytest.FixtureRequest, proxy_name: str) -> None:
    server: ServerThread = request.getfixturevalue(proxy_name)
    for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Basic abc"}):
        response = server.http.post(
            "/v1/chat/completions", json={"model": "echo", "messages": user("x")}, headers=headers
        )
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "missing_api_key"
    response = server.http.get("/v1/models")
    assert response.status_code == 401


def test_pass_through_sends_the_clients_key(proxy: ServerThread, upstream: FakeAnthropic) -> None:
    marker = "the client's own key"
    proxy.client("sk-ant-someone-else").chat.completions.create(model="echo", messages=user(marker))
    assert upstream.find(marker).headers["x-api-key"] == "sk-ant-someone-else"


def test_pass_through_a_key_the_upstream_refuses(proxy: ServerThread) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        proxy.client("bad-key").chat.completions.create(model="echo", messages=user("x"), stream=True)
    assert caught.value.body == {
        "message": "invalid x-api-key",
        "type": "authentication_error",
        "param": None,
        "code": "authentication_error",
    }


def test_models_from_the_settings_with_aliases(keyed_proxy: ServerThread) -> None:
    models = keyed_proxy.client(SERVER_KEY).models.list()
    assert [(m.id, m.owned_by) for m in models.data] == [
        ("claude-sonnet-4-5", "anthropic"),
        ("claude-opus-4-1", "anthropic"),
        ("gpt-4o", "chunkline"),
    ]
    with pytest.raises(openai.AuthenticationError):
        keyed_proxy.client("wrong").models.list()


def test_an_alias_names_the_upstream_model(keyed_proxy: ServerThread, upstream: FakeAnthropic) -> None:
    marker = "through the alias"
    completion = keyed_proxy.client(SERVER_KEY).chat.completions.create(model="gpt-4o", messages=user(marker))
    assert completion.choices[0].message.content == marker
    assert upstream.find(marker).body["model"] == "echo"


def test_keys_never_reach_logs_or_error_bodies(
    keyed_proxy: ServerThread, proxy: ServerThread, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bodies: list[Any] = []

    def failing(call: Any) -> None:
        try:
            call()
        except openai.APIError as exc:
            bodies.append(exc.body)
            if isinstance(exc, openai.APIStatusError):
                bodies.append(exc.response.text)
                bodies.append(dict(exc.response.headers))
        else:
            raise AssertionError("the call did not fail")

    keyed = keyed_proxy.client(SERVER_KEY)
    for client, model in ((keyed, "status:401:quote-key"), (proxy.client(), "status:500:quote-key")):
        for stream in (True, False):
            failing(
                lambda c=client, m=model, s=stream: c.chat.completions.create(
                    model=m, messages=user("k"), stream=s
                )
            )
    failing(
        lambda: keyed_proxy.client(SERVER_KEY + "-wrong").chat.completions.create(
            model="echo", messages=user("k")
        )
    )
    failing(
        lambda: list(
            keyed.chat.completions.create(model="error-mid:llm_long_text:3", messages=user("k"), stream=True)
        )
    )
    failing(lambda: keyed.chat.completions.create(model="cut:llm_long_text:900", messages=user("k")))
    for stream in (True, False):
        model = "error-mid:llm_long_text:3:quote-key"
        failing(
            lambda s=stream, m=model: list(
                keyed.chat.completions.create(model=m, messages=user("k"), stream=s)
            )
        )
    failing(lambda: proxy.client("bad-key").chat.completions.create(model="echo", messages=user("k")))
    for stream in (True, False):  # a body quoted up to its 300th character, where the key straddles
        failing(
            lambda s=stream: keyed.chat.completions.create(
                model="json-200:quote-key", messages=user("k"), stream=s
            )
        )
    # The upstream did quote the key; what reached the client says [redacted] instead, in error
    # bodies and in-band.
    assert any("for key [redacted]" in str(body) for body in bodies)
    assert sum("Overloaded (key [redacted])" in str(body) for body in bodies) >= 2
    text = caplog.text + repr(bodies)
    assert "uvicorn.access" in {r.name for r in caplog.records}, "the access log was not captured"
    assert sum("(text/event-stream): {" in str(body) and "[redacted]" in str(body) for body in bodies) >= 2
    for secret in SECRETS:
        assert secret not in text, f"a key leaked: {secret}"
        assert len(secret) < 12 or secret[:12] not in text, f"the start of a key leaked: {secret[:12]}"


def test_settings_never_show_keys() -> None:
    settings = Settings(api_keys=(Secret(SERVER_KEY),), anthropic_api_key=Secret(UPSTREAM_KEY))
    for shown in (repr(settings), str(settings), repr(settings.api_keys), f"{settings.anthropic_api_key}"):
        assert SERVER_KEY not in shown and UPSTREAM_KEY not in shown
    assert "Secret('********')" in repr(settings)
    assert settings.anthropic_api_key is not None and settings.anthropic_api_key.reveal() == UPSTREAM_KEY


def test_a_key_is_printable_ascii_without_spaces_and_a_beta_header_printable_ascii() -> None:
    every = [chr(c) for c in range(0x300)]
    assert [c for c in every if _is_header_text(c)] == [chr(c) for c in range(0x21, 0x7F)]
    assert _is_header_text("sk-ant-api03_AZ~!") and _is_header_text("")
    assert beta_header({"anthropic-beta": "a, b-2025"}) == "a, b-2025"
    assert beta_header({}) is None
    for bad in ("caf\u00e9", "a\tb", "a\x7f", "a\nb"):
        with pytest.raises(APIError):
            beta_header({"anthropic-beta": bad})
