"""A fake OpenAI-compatible upstream (``POST /v1/chat/completions``) on the fake Anthropic server's machinery.

What it answers is chosen by the request's ``model`` (the server's model map may choose it):

=========================  ==================================================================
``<recording>``            a file of tests/fixtures/openai or openai_compat (stem), as sent
``<recording>@N``          the same in N-byte writes
``<recording>@events``     the same, an event per write (as a server streams it)
``echo``                   a text answer made of the last user message's text, with usage
``bash-agent``             Claude Code's part: a Bash tool call running ``echo chunk-$((40+2))``;
                           once the conversation holds a tool result, a text answer quoting it
``status:CODE[:quote-key]`` that status with OpenAI's error JSON (its message may quote the key)
``error-mid[:quote-key]``  two text chunks, then an error object in the stream
``cut:B``                  B bytes of an echo answer, then the body ends cleanly
``stall[:K]``             K text chunks (2), then silence until the client leaves
=========================  ==================================================================

A request whose bearer token is ``bad-key`` gets a 401, as OpenAI answers an unknown key.
"""

from __future__ import annotations

import json
import re
from typing import Any

import fake_anthropic
from fake_anthropic import FakeAnthropic, Received, _Exchange

from chat_route import chat_chunk, chat_fixture_paths, chat_sse, load_chat_sse

__all__ = ["FakeOpenAIChat", "main"]

# After each event's blank line: where a recording splits into the events a server writes.
_EVENT_ENDS = re.compile(rb"(?<=\n\n)|(?<=\r\n\r\n)")


_USAGE = {
    "prompt_tokens": 12,
    "completion_tokens": 5,
    "total_tokens": 17,
    "prompt_tokens_details": {"cached_tokens": 2},
}


def echo_chunks(text: str) -> list[dict[str, Any]]:
    words = text.split(" ")
    pieces = [w + " " for w in words[:-1]] + [words[-1]]
    return [
        chat_chunk({"role": "assistant", "content": ""}),
        *(chat_chunk({"content": p}) for p in pieces if p),
        chat_chunk({}, "stop"),
        {**chat_chunk({}), "choices": [], "usage": _USAGE},
    ]


def last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages", [])):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


class FakeOpenAIChat(FakeAnthropic):
    """The fake chat upstream; ``url`` is its base URL without ``/v1`` (add it)."""

    async def _respond(self, request: Received, out: _Exchange) -> None:
        if request.method != "POST" or request.path != "/v1/chat/completions":
            await self._chat_error(out, 404, f"no route {request.method} {request.path}")
            return
        key = request.headers.get("authorization", "").removeprefix("Bearer ")
        if key == "bad-key":
            await self._chat_error(out, 401, "Incorrect API key provided: bad-key")
            return
        model = str(request.body.get("model", ""))
        name, _, arg = model.partition(":")
        if name == "echo":
            await self._stream(out, [chat_sse(echo_chunks(last_user_text(request.body)))])
        elif name == "bash-agent":
            await self._stream(out, [chat_sse(_agent_turn(request.body))], piece=7)
        elif name == "status":
            code, _, form = arg.partition(":")
            message = f"fake upstream says {code}"
            if form == "quote-key":
                message += f" for key {key}"
            await self._chat_error(out, int(code), message)
        elif name == "error-mid":
            message = "The server had an error while processing your request."
            if arg == "quote-key":
                message += f" (key {key})"
            chunks = echo_chunks("partial answer")[:3]
            error = {"error": {"message": message, "type": "server_error", "code": None}}
            await self._stream(out, [chat_sse([*chunks, error], done=False)])
        elif name == "cut":
            await self._stream(out, [chat_sse(echo_chunks("one two three four"))[: int(arg)]])
        elif name == "stall":
            await out.start(200, "text/event-stream")
            count = int(arg) if arg else 2
            if count:
                await out.data(chat_sse(echo_chunks("so far")[:count], done=False))
            await out.wait_gone()
        else:
            stem, _, size = model.partition("@")
            path = next(p for p in chat_fixture_paths() if p.stem == stem)
            data = load_chat_sse(path)
            if size == "events":  # as a server streams it: each event as soon as it is made
                await self._stream(out, [event for event in _EVENT_ENDS.split(data) if event])
            else:
                await self._stream(out, [data], piece=int(size) if size else None)

    async def _chat_error(self, out: _Exchange, status: int, message: str) -> None:
        kind = "invalid_request_error" if status < 500 else "server_error"
        await self._json(
            out, status, {"error": {"message": message, "type": kind, "param": None, "code": None}}
        )


def _agent_turn(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The fake model's turn in Claude Code's loop: run Bash first, then report its output."""
    results = [m for m in body.get("messages", []) if m.get("role") == "tool"]
    if results:
        return echo_chunks(f"The command printed {results[-1]['content'].strip()}.")
    arguments = json.dumps({"command": "echo chunk-$((40+2))", "description": "Print a marker"})
    call = {
        "index": 0,
        "id": "call_bash_1",
        "type": "function",
        "function": {"name": "Bash", "arguments": ""},
    }
    return [
        chat_chunk({"role": "assistant", "content": None, "tool_calls": [call]}),
        chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": arguments[:20]}}]}),
        chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": arguments[20:]}}]}),
        chat_chunk({}, "tool_calls"),
        {**chat_chunk({}), "choices": [], "usage": _USAGE},
    ]


def main() -> None:
    """Run this fake upstream on its own (the server benchmark's Messages route does)."""
    fake_anthropic.main(FakeOpenAIChat)


if __name__ == "__main__":
    main()
