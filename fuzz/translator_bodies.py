"""Generated Responses and Anthropic Messages request bodies, for fuzz_translators.py (hypothesis)."""

from __future__ import annotations

import base64
from typing import Any

from fuzzkit import any_value, deep, dumps, json_values
from hypothesis import strategies as st

from chunkline.builtins.responses_items import ENCRYPTED_PREFIX

_any = any_value
_text = st.text(max_size=20)
_name = st.sampled_from(["f", "shell", "apply_patch", "a.b", ""]) | st.text(max_size=8)


def _optional(**fields: Any) -> Any:
    return st.fixed_dictionaries({}, optional=fields)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _packed(block: Any) -> str:
    """What `encode_reasoning` writes for ``block`` (any JSON, of any depth, not only a thinking block)."""
    return ENCRYPTED_PREFIX + base64.urlsafe_b64encode(dumps(block).encode()).decode()


_thinking_block = st.fixed_dictionaries(
    {"type": st.sampled_from(["thinking", "redacted_thinking"]) | _any},
    optional={"thinking": _text | _any, "signature": _text | _any, "data": _text | _any},
)
_encrypted = st.one_of(
    st.builds(_packed, _thinking_block | json_values),
    st.builds(lambda s: ENCRYPTED_PREFIX + s, st.text(max_size=20)),  # damaged: not base64, not JSON
    st.text(max_size=20),  # OpenAI's own blob
    _any,
)
# Data URLs: well-formed, of the types Claude takes and others, and damaged.
_data_url = st.one_of(
    st.builds(
        lambda kind, data: f"data:{kind};base64,{_b64(data)}",
        st.sampled_from(["image/png", "image/jpeg", "application/pdf", "text/plain", "image/bmp", ""]),
        st.binary(max_size=12),
    ),
    st.sampled_from(["data:image/png,AAAA", "data:;base64,", "data:text/plain;base64,/w==", "data:"]),
)
_url = st.sampled_from(["https://example.com/a.png", "http://x", "ftp://x", ""]) | _data_url | _text

# --- Responses (POST /v1/responses) ---

_part = st.fixed_dictionaries(
    {
        "type": st.sampled_from(
            ["input_text", "output_text", "text", "refusal", "input_image", "input_file", "input_audio"]
        )
        | _any
    },
    optional={
        "text": _text | _any,
        "refusal": _text | _any,
        "image_url": _url | _any,
        "file_id": _text | _any,
        "file_data": _data_url | _any,
        "filename": _text | _any,
        "detail": _any,
    },
)
_content = _text | st.lists(_part, max_size=3) | _any
# Any JSON a client may send, integers past 64 bits included (which orjson cannot write).
_arguments = st.builds(dumps, st.dictionaries(_text, json_values, max_size=3))
_item = st.one_of(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant", "system", "developer", "tool"]) | _any},
        optional={"type": st.just("message") | _any, "content": _content, "id": _any, "status": _any},
    ),
    st.fixed_dictionaries(
        {"type": st.just("function_call")},
        optional={
            "call_id": _text | _any,
            "name": _name | _any,
            "namespace": _text | _any,
            "arguments": _arguments | _text | _any,
            "id": _any,
        },
    ),
    st.fixed_dictionaries(
        {"type": st.just("function_call_output")}, optional={"call_id": _text | _any, "output": _content}
    ),
    st.fixed_dictionaries(
        {"type": st.just("reasoning")},
        optional={"id": _any, "summary": _any, "encrypted_content": _encrypted, "content": _any},
    ),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["custom_tool_call", "custom_tool_call_output", "item_reference"]) | _any},
        optional={"call_id": _text, "name": _name, "input": _text | _any, "output": _any, "id": _any},
    ),
    _any,
)
_function = st.fixed_dictionaries(
    {"type": st.just("function") | _any},
    optional={"name": _name | _any, "description": _text | _any, "parameters": _any, "strict": _any},
)
_tool = st.one_of(
    _function,
    st.fixed_dictionaries(
        {"type": st.just("namespace")},
        optional={"name": _name | _any, "description": _any, "tools": st.lists(_function, max_size=3) | _any},
    ),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["web_search", "file_search", "custom", "local_shell", "mcp"]) | _any},
        optional={"name": _name, "format": _any},
    ),
)
_responses_choice = st.one_of(
    st.sampled_from(["auto", "none", "required", "any"]),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["function", "custom", "allowed_tools", "web_search"]) | _any},
        optional={"name": _name | _any, "namespace": _text | _any, "tools": _any, "mode": _any},
    ),
    _any,
)
_format = st.fixed_dictionaries(
    {"type": st.sampled_from(["text", "json_object", "json_schema"]) | _any},
    optional={"name": _text | _any, "schema": json_values | _any, "description": _any, "strict": _any},
)
_responses_fields = {
    "stream": st.booleans() | _any,
    "instructions": _text | _any,
    "tools": st.lists(_tool, max_size=3) | _any,
    "tool_choice": _responses_choice,
    "parallel_tool_calls": st.booleans() | _any,
    "max_output_tokens": st.integers(min_value=-2, max_value=10**6) | _any,
    "temperature": st.floats(min_value=0, max_value=2) | _any,
    "top_p": st.floats(min_value=0, max_value=1) | _any,
    "reasoning": _optional(
        effort=st.sampled_from(["low", "medium", "high", "minimal", "none"]) | _any, summary=_any
    )
    | _any,
    "text": _optional(format=_format | _any, verbosity=_any) | _any,
    "include": st.lists(st.sampled_from(["reasoning.encrypted_content", "x"]) | _text, max_size=2) | _any,
    "user": _text | _any,
    "safety_identifier": _text | _any,
    "store": st.booleans() | _any,
    "metadata": _any,
    "previous_response_id": st.none() | _any,
    "background": st.sampled_from([False, None, True]) | _any,
    "conversation": st.none() | _any,
    "prompt": st.none() | _any,
    "top_logprobs": st.sampled_from([None, 0, 3]) | _any,
    "max_tool_calls": st.none() | _any,
    "truncation": _any,
    "service_tier": _any,
    "stream_options": _any,
    "unknown": _any,
}
_responses_random = st.fixed_dictionaries(
    {"model": st.just("echo") | _text | _any, "input": _text | st.lists(_item, max_size=4) | _any},
    optional=_responses_fields,
)
_RESPONSES_DEEP = [
    "input",
    "content",
    "text",
    "role",
    "arguments",
    "output",
    "encrypted_content",
    "parameters",
    "choice_namespace",
    "choice_name",
    "schema",
    *_responses_fields,
]


def _responses_with_deep(place: str, value: Any) -> dict[str, Any]:
    """A valid request but for ``value`` in one ``place``."""
    message: dict[str, Any] = {"role": "user", "content": "fuzz"}
    body: dict[str, Any] = {"model": "echo", "input": [message]}
    tool = {"type": "function", "name": "f", "parameters": {"type": "object"}}
    if place in ("content", "role"):
        message[place] = value
    elif place == "text":
        message["content"] = [{"type": "input_text", "text": value}]
    elif place == "arguments":
        body["input"].append({"type": "function_call", "call_id": "c", "name": "f", "arguments": value})
    elif place == "output":
        body["input"].append({"type": "function_call_output", "call_id": "c", "output": value})
    elif place == "encrypted_content":
        body["input"].append({"type": "reasoning", "encrypted_content": value})
    elif place == "parameters":
        body["tools"] = [{**tool, "parameters": value}]
    elif place.startswith("choice_"):
        body["tools"] = [tool]
        body["tool_choice"] = {"type": "function", "name": "f", place.removeprefix("choice_"): value}
    elif place == "schema":
        body["text"] = {"format": {"type": "json_schema", "name": "s", "schema": value}}
    else:
        body[place] = value
    return body


responses_bodies = st.one_of(
    st.fixed_dictionaries(
        {"model": st.just("echo"), "input": st.sampled_from(["fuzz", [{"role": "user", "content": "fuzz"}]])},
        optional={"stream": st.booleans(), "max_output_tokens": st.integers(min_value=1, max_value=100)},
    ),
    st.builds(_responses_with_deep, st.sampled_from(_RESPONSES_DEEP), deep()),
    _responses_random,
    _responses_random,
    _any,
)

# --- Anthropic Messages (POST /v1/messages on --upstream-format openai-chat) ---

_source = st.one_of(
    st.fixed_dictionaries(
        {"type": st.just("base64")},
        optional={"media_type": st.sampled_from(["image/png", "text/plain"]) | _any, "data": _text | _any},
    ),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["url", "text", "file"])}, optional={"url": _url | _any, "data": _any}
    ),
    _any,
)
_inner = st.fixed_dictionaries(
    {"type": st.sampled_from(["text", "image", "search_result"]) | _any},
    optional={"text": _text | _any, "source": _source},
)
_block = st.fixed_dictionaries(
    {
        "type": st.sampled_from(
            [
                "text",
                "image",
                "tool_use",
                "tool_result",
                "thinking",
                "redacted_thinking",
                "document",
                "server_tool_use",
                "web_search_tool_result",
            ]
        )
        | _any
    },
    optional={
        "text": _text | _any,
        "source": _source,
        "id": _text | _any,
        "name": _name | _any,
        "input": json_values | _any,
        "tool_use_id": _text | _any,
        "content": _text | st.lists(_inner, max_size=3) | _any,
        "is_error": st.booleans() | _any,
        "thinking": _text | _any,
        "signature": _text | _any,
        "data": _text | _any,
        "cache_control": _any,
    },
)
_anthropic_message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system"]) | _any},
    optional={"content": _text | st.lists(_block, max_size=4) | _any},
)
_anthropic_tool = st.fixed_dictionaries(
    {"name": _name | _any},
    optional={
        "type": _any,
        "description": _text | _any,
        "input_schema": json_values | _any,
        "cache_control": _any,
    },
)
_messages_fields = {
    "system": _text | st.lists(_inner, max_size=3) | _any,
    "stream": st.booleans() | _any,
    "temperature": st.floats(min_value=0, max_value=1) | _any,
    "top_p": _any,
    "top_k": _any,
    "stop_sequences": st.lists(_text, max_size=3) | _any,
    "tools": st.lists(_anthropic_tool, max_size=3) | _any,
    "tool_choice": _optional(
        type=st.sampled_from(["auto", "any", "tool", "none"]) | _any,
        name=_name | _any,
        disable_parallel_tool_use=st.booleans() | _any,
    )
    | _any,
    "thinking": _optional(
        type=st.sampled_from(["enabled", "adaptive", "disabled"]) | _any,
        budget_tokens=st.integers(min_value=0, max_value=40_000) | _any,
    )
    | _any,
    "output_config": _optional(effort=st.sampled_from(["low", "medium", "high", "max"]) | _any) | _any,
    "metadata": _optional(user_id=_text | _any) | _any,
    "service_tier": _any,
    "context_management": _any,
}
_messages_random = st.fixed_dictionaries(
    {
        "model": st.just("echo") | _text | _any,
        "max_tokens": st.integers(min_value=-1, max_value=10**5) | _any,
        "messages": st.lists(_anthropic_message, max_size=4) | _any,
    },
    optional=_messages_fields,
)
_MESSAGES_DEEP = [
    "content",
    "role",
    "text",
    "input",
    "tool_name",
    "tool_id",
    "result",
    "result_text",
    "thinking",
    "source",
    "input_schema",
    "tool_choice_name",
    *_messages_fields,
]


def _messages_with_deep(place: str, value: Any) -> dict[str, Any]:
    """A valid request but for ``value`` in one ``place``."""
    message: dict[str, Any] = {"role": "user", "content": "fuzz"}
    body: dict[str, Any] = {"model": "echo", "max_tokens": 100, "messages": [message]}
    call = {"type": "tool_use", "id": "c", "name": "f", "input": {}}
    result = {"type": "tool_result", "tool_use_id": "c", "content": "ok"}
    places = {
        "text": ("user", {"type": "text", "text": value}),
        "source": ("user", {"type": "image", "source": value}),
        "result": ("user", {**result, "content": value}),
        "result_text": ("user", {**result, "content": [{"type": "text", "text": value}]}),
        "input": ("assistant", {**call, "input": value}),
        "tool_name": ("assistant", {**call, "name": value}),
        "tool_id": ("assistant", {**call, "id": value}),
        "thinking": ("assistant", {"type": "thinking", "thinking": value, "signature": "s"}),
    }
    if place in ("content", "role"):
        message[place] = value
    elif place in places:
        role, block = places[place]
        body["messages"] = [{"role": role, "content": [block]}, {"role": "user", "content": "fuzz"}]
    elif place == "input_schema":
        body["tools"] = [{"name": "f", "input_schema": value}]
    elif place == "tool_choice_name":
        body["tools"] = [{"name": "f", "input_schema": {}}]
        body["tool_choice"] = {"type": "tool", "name": value}
    else:
        body[place] = value
    return body


messages_bodies = st.one_of(
    st.fixed_dictionaries(
        {
            "model": st.just("echo"),
            "max_tokens": st.integers(min_value=1, max_value=100),
            "messages": st.just([{"role": "user", "content": "fuzz"}]),
        },
        optional={"stream": st.booleans()},
    ),
    st.builds(_messages_with_deep, st.sampled_from(_MESSAGES_DEEP), deep()),
    _messages_random,
    _messages_random,
    _any,
)
