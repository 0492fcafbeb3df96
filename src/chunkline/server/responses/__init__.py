"""The OpenAI Responses API endpoint (``POST /v1/responses``): request translation and the exchange."""

from .exchange import ResponsesExchange, ResponsesPipelines, final_response
from .request import ResponsesRequest, translate_responses_request

__all__ = [
    "ResponsesExchange",
    "ResponsesPipelines",
    "ResponsesRequest",
    "final_response",
    "translate_responses_request",
]
