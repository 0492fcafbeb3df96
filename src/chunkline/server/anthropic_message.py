"""A non-streaming Anthropic ``message``, assembled from the events the anthropic-messages encoder writes."""

from __future__ import annotations

from typing import Any

import orjson

from ..errors import InternalStageError, stream_error_for

__all__ = ["MessageBuilder"]


class MessageBuilder:
    """Collects one conversion's Anthropic stream events (as dicts, `add`) into the message a
    non-streaming request answers with (`result`): the same blocks, stop reason and usage that
    the anthropic SDK accumulates from the stream."""

    def __init__(self) -> None:
        self._message: dict[str, Any] | None = None
        self._json: dict[int, list[str]] = {}
        self._stopped = False

    def add(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        message = self._message
        if kind == "message_start":
            self._message = dict(event["message"])
            self._message["content"] = []
            return
        if message is None:
            return  # a ping before the message
        content: list[dict[str, Any]] = message["content"]
        if kind == "content_block_start":
            content.append(dict(event["content_block"]))
        elif kind == "content_block_delta":
            block, delta = content[event["index"]], event["delta"]
            dtype = delta["type"]
            if dtype == "text_delta":
                block["text"] += delta["text"]
            elif dtype == "thinking_delta":
                block["thinking"] += delta["thinking"]
            elif dtype == "signature_delta":
                block["signature"] = delta["signature"]
            elif dtype == "input_json_delta":
                self._json.setdefault(event["index"], []).append(delta["partial_json"])
        elif kind == "message_delta":
            message["stop_reason"] = event["delta"]["stop_reason"]
            message["stop_sequence"] = event["delta"]["stop_sequence"]
            message["usage"] = {**message["usage"], **event["usage"]}
        elif kind == "message_stop":
            self._stopped = True

    def result(self) -> dict[str, Any]:
        """The message; `InternalStageError` if the events never made a whole one (the
        pipeline raises faults itself, so that is a bug)."""
        if self._message is None or not self._stopped:
            raise InternalStageError("the conversion ended without a whole message")
        for index, parts in self._json.items():
            text = "".join(parts)
            try:
                self._message["content"][index]["input"] = orjson.loads(text) if text else {}
            except orjson.JSONDecodeError:
                raise stream_error_for(
                    "invalid_upstream_response",
                    f"the upstream's arguments for tool call {index} are not valid JSON: {text[:80]!r}",
                ) from None
        return self._message
