"""The upstream clients are shared by every request, so they keep no cookie an upstream sets."""

from __future__ import annotations

import anyio
import httpx

from chunkline.server.settings import Settings
from chunkline.server.upstream import Upstream, _no_cookies


def test_a_cookie_an_upstream_sets_never_goes_out_again() -> None:
    sent: list[str | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers.get("cookie"))
        return httpx.Response(200, headers={"set-cookie": "session=client-a; Path=/"}, json={})

    async def two_requests() -> None:
        async with httpx.AsyncClient(
            base_url="http://upstream.test", cookies=_no_cookies(), transport=httpx.MockTransport(answer)
        ) as client:
            await client.get("/v1/models")
            await client.get("/v1/models")
            assert len(client.cookies.jar) == 0

    anyio.run(two_requests)
    assert sent == [None, None]


def test_every_upstream_client_refuses_cookies() -> None:
    async def build() -> None:
        upstream = Upstream(Settings())
        try:
            for client in upstream._clients:
                policy = client.cookies.jar._policy  # type: ignore[attr-defined]
                assert policy.allowed_domains() == ()
        finally:
            await upstream.aclose()

    anyio.run(build)
