"""What the server's hypothesis fuzzers share: JSON strategies, any-depth JSON, the checks, the run."""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import httpx
import orjson
from hypothesis import HealthCheck, Phase, seed, settings
from hypothesis import strategies as st

from chunkline.server.errors import APIError

ROOT = Path(__file__).resolve().parent.parent

FINDINGS = ROOT / "build" / "fuzz"
# Read before hypothesis raises it: the limit a server's request runs with.
SERVER_RECURSION_LIMIT = sys.getrecursionlimit()

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.sampled_from(["", "auto", "none", "required", "function", "text", "user", "json_schema", "high"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@st.composite
def deep(draw: Any) -> Any:
    """A value nested far deeper than anything real: past repr's and orjson's writing depths."""
    value: Any = draw(scalars)
    # Around the depths that matter: orjson writes 254 levels, repr() recurses about 990 deep,
    # orjson reads 1,024.
    depth = draw(st.sampled_from([100, 253, 255, 980, 1_000, 1_019, 1_023]))
    as_list = draw(st.booleans())  # one draw, not one per level: hypothesis bounds its draws
    for _ in range(depth):
        value = [value] if as_list else {"role": value}
    return value


any_value = st.one_of(json_values, json_values, json_values, deep())
#: Header bytes a client can send (Latin-1, no control characters).
header_text = st.binary(max_size=40).map(lambda b: bytes(c for c in b if c >= 0x20 and c != 0x7F))

#: One round of a fuzzer: 50 examples, no database, no deadline (a deep body is slow to build).
round_settings = settings(
    max_examples=50,
    deadline=None,
    database=None,
    phases=[Phase.generate, Phase.shrink],
    suppress_health_check=list(HealthCheck),
)


class Finding(Exception):
    """A failed check. It keeps the body that failed it: hypothesis cannot print a deep one."""

    latest: ClassVar[Finding | None] = None

    def __init__(self, message: str, body: Any) -> None:
        super().__init__(message)
        self.body = body
        Finding.latest = self


def dumps(value: Any) -> str:
    """JSON for any depth (json.dumps recurses, and stops near 1,000 levels)."""
    out: list[str] = []
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _Raw):
            out.append(item.text)
        elif isinstance(item, list):
            stack.append(_Raw("]"))
            for index, element in reversed(list(enumerate(item))):
                stack.append(element)
                if index:
                    stack.append(_Raw(","))
            out.append("[")
        elif isinstance(item, dict):
            stack.append(_Raw("}"))
            for index, (key, element) in reversed(list(enumerate(item.items()))):
                stack.append(element)
                stack.append(_Raw(json.dumps(str(key)) + ":"))
                if index:
                    stack.append(_Raw(","))
            out.append("{")
        else:
            out.append(json.dumps(item))
    return "".join(out)


class _Raw:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def as_server_reads(value: Any) -> tuple[bool, Any]:
    """``(True, the body)`` as the server parses it (orjson: integers past 64 bits become floats),
    or ``(False, None)`` for a body it refuses as not JSON (nested past 1,024 levels)."""
    try:
        return True, orjson.loads(dumps(value).encode("utf-8", "surrogatepass"))
    except orjson.JSONDecodeError:
        return False, None


def check_no_500(
    client: httpx.Client,
    path: str,
    body: Any,
    headers: Mapping[str, str | bytes],
    passed_on: Callable[[Any], bool] = lambda body: False,
) -> None:
    """POST ``body`` (written as a client may write it) to ``path`` on a real server: any answer
    but a 500 will do, and so will a header h11 will not send; ``passed_on(body)`` says a 500 is
    the fake upstream's own, passed on."""
    content = dumps(body).encode("utf-8", "surrogatepass")
    try:
        response = client.post(path, content=content, headers={"content-type": "application/json", **headers})
    except httpx.LocalProtocolError:
        return  # a header h11 will not send (say, with trailing whitespace): no finding
    if response.status_code == 500 and not passed_on(body):
        raise Finding(f"POST {path}: HTTP 500: {response.text[:300]}", body)


def check_translator(name: str, translator: Callable[[Any], Any], body: Any) -> None:
    """``translator``, given ``body`` as the server parses it, returns or raises a 4xx `APIError`
    (the client's error), and what it returns can be sent upstream. A body the server would refuse
    as not JSON is translated as it is, for the first check only.

    It runs as a server's request does: on a fresh thread stack (hypothesis's own frames would make
    the stack deeper than the server's), with the default recursion limit."""
    parsed, value = as_server_reads(body)
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(translator(value if parsed else body))
        except APIError as exc:
            outcome.append(None if 400 <= exc.status < 500 else exc)
        except Exception as exc:
            outcome.append(exc)

    # hypothesis raises the recursion limit while it runs a test; the server runs with
    # Python's default, where a deep repr() fails.
    raised = sys.getrecursionlimit()
    sys.setrecursionlimit(SERVER_RECURSION_LIMIT)
    try:
        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
    finally:
        sys.setrecursionlimit(raised)
    result = outcome[0]
    if isinstance(result, Exception):
        raise Finding(f"{name} raised {type(result).__name__}: {result}", body) from result
    if result is None or not parsed:
        return
    # The server sends the body with orjson.dumps, and answers one nested past orjson's 254 levels
    # with a 400 saying so (Upstream.encode): anything else orjson cannot write would get that
    # 400 with a false reason.
    try:
        orjson.dumps(result.body)
    except orjson.JSONEncodeError as exc:
        if "recursion limit" not in str(exc).lower():
            raise Finding(f"{name}: the translated body cannot be sent upstream: {exc}", body) from exc


def run_rounds(tool: str, check: Callable[[], None], seconds: float, first_seed: int) -> tuple[int, int]:
    """Rounds of the hypothesis test ``check`` (seeds ``first_seed``, +1, ...) for ``seconds``:
    ``(0, the next seed)``, or ``(1, the seed)`` once a round fails: its report (the last
    finding, the shrunk one) saved as build/fuzz/TOOL-crash-*.txt, its body as the .json beside
    it, and the report printed."""
    stop_at = time.monotonic() + seconds
    round_seed = first_seed
    while time.monotonic() < stop_at:
        Finding.latest = None
        try:
            seed(round_seed)(check)()
        except Exception as failure:  # a Finding, or hypothesis failing to print one
            finding = Finding.latest
            text = "".join(traceback.format_exception(finding or failure))
            FINDINGS.mkdir(parents=True, exist_ok=True)
            stem = FINDINGS / f"{tool}-crash-{hashlib.sha1(text.encode()).hexdigest()[:12]}"
            Path(f"{stem}.txt").write_text(text)
            if finding is not None:
                Path(f"{stem}.json").write_text(dumps(finding.body), encoding="utf-8", errors="surrogatepass")
            print(f"{tool}: a finding (seed {round_seed}), saved as {stem}.*:\n{text}", file=sys.stderr)
            return 1, round_seed
        round_seed += 1
    return 0, round_seed


def arguments(argv: list[str]) -> tuple[float, int]:
    """``--seconds S`` (20) and ``--seed N`` (from the clock)."""
    seconds = float(argv[argv.index("--seconds") + 1]) if "--seconds" in argv else 20.0
    first_seed = int(argv[argv.index("--seed") + 1]) if "--seed" in argv else int(time.time()) % 1_000_000
    return seconds, first_seed
