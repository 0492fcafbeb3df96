"""Prometheus metrics for GET /metrics, with OpenTelemetry GenAI names, recorded once per request."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .observe import RequestRecord

__all__ = ["CONTENT_TYPE", "MAX_MODEL_LABELS", "Metrics", "ModelLabels"]

#: The Prometheus text format's media type.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: How many distinct model names become label values; any later one is counted as ``other``.
MAX_MODEL_LABELS = 50
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,99}")

# The bucket boundaries the OpenTelemetry GenAI conventions advise for each instrument.
_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
_DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
_FIRST_TOKEN_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)


class ModelLabels:
    """Model names as label values, bounded: the first `MAX_MODEL_LABELS` well-formed names
    seen keep their own value; anything later, malformed or missing is ``other`` / ``unknown``,
    so a client sending random model names cannot grow the series without end."""

    def __init__(self, limit: int = MAX_MODEL_LABELS) -> None:
        self._limit = limit
        self._known: set[str] = set()

    def __call__(self, name: str | None) -> str:
        if not name:
            return "unknown"
        if name in self._known:
            return name
        if len(self._known) >= self._limit or not _MODEL_NAME.fullmatch(name):
            return "other"
        self._known.add(name)
        return name


class _PoolCollector(Collector):
    """The upstream connection pools' use, read at scrape time (nothing is counted per request)."""

    def __init__(self, pool_use: Callable[[], tuple[int, int]], limit: int) -> None:
        self._pool_use = pool_use
        self._limit = limit

    def collect(self) -> Iterator[Any]:
        active, idle = self._pool_use()
        connections = GaugeMetricFamily(
            "chunkline_upstream_connections",
            "Upstream connections open, by state (active: carrying a request; idle: kept for reuse).",
            labels=["state"],
        )
        connections.add_metric(["active"], active)
        connections.add_metric(["idle"], idle)
        yield connections
        yield GaugeMetricFamily(
            "chunkline_upstream_connections_limit",
            "The most upstream connections open at once (CHUNKLINE_UPSTREAM_MAX_CONNECTIONS).",
            value=self._limit,
        )


class Metrics:
    """The server's metrics, in a registry of their own (each app has one). `observe` records a
    finished request; `streams` counts the answers being streamed."""

    def __init__(self, pool_use: Callable[[], tuple[int, int]], pool_limit: int) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.models = ModelLabels()
        registry = self.registry
        self.client_tokens = Histogram(
            "gen_ai_client_token_usage",
            "Tokens the upstream counted per request (chunkline as a GenAI client), by type "
            "(input: the whole prompt, cached parts included; output; cache_read; cache_write).",
            ["gen_ai_token_type", "gen_ai_response_model", "http_route"],
            buckets=_TOKEN_BUCKETS,
            registry=registry,
        )
        self.server_tokens = Histogram(
            "gen_ai_server_token_usage",
            "Tokens per request served to clients (chunkline as a GenAI server), by type and the "
            "model name the client asked for.",
            ["gen_ai_token_type", "gen_ai_request_model", "http_route"],
            buckets=_TOKEN_BUCKETS,
            registry=registry,
        )
        self.duration = Histogram(
            "gen_ai_server_request_duration_seconds",
            "Seconds from a request's arrival to the end of its response.",
            ["http_route", "gen_ai_request_model", "error_type"],
            buckets=_DURATION_BUCKETS,
            registry=registry,
        )
        self.first_token = Histogram(
            "gen_ai_server_time_to_first_token_seconds",
            "Seconds from a request's arrival to the first content of its answer.",
            ["http_route", "gen_ai_request_model"],
            buckets=_FIRST_TOKEN_BUCKETS,
            registry=registry,
        )
        self.requests = Counter(
            "chunkline_requests",
            "Requests answered, by route, HTTP status and error type (empty: none).",
            ["http_route", "http_response_status_code", "error_type"],
            registry=registry,
        )
        self.streams = Gauge(
            "chunkline_streams_in_flight",
            "Streamed answers being sent now.",
            ["http_route"],
            registry=registry,
        )
        registry.register(_PoolCollector(pool_use, pool_limit))

    def observe(self, record: RequestRecord) -> None:
        """Record one finished request (a few label lookups: once per request, never per event)."""
        route = record.route
        error = record.fault or ""
        self.requests.labels(route, str(record.status), error).inc()
        if record.client_model is None and record.upstream_model is None:
            return  # not a model request (health checks, listings): no GenAI figures
        asked = self.models(record.client_model)
        if record.duration is not None:
            self.duration.labels(route, asked, error).observe(record.duration)
        if record.first_token is not None:
            self.first_token.labels(route, asked).observe(record.first_token)
        answered = self.models(record.upstream_model)
        for kind, count in _token_counts(record):
            self.client_tokens.labels(kind, answered, route).observe(count)
            self.server_tokens.labels(kind, asked, route).observe(count)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _token_counts(record: RequestRecord) -> Iterator[tuple[str, int]]:
    if record.input_tokens is None and record.output_tokens is None:
        return
    cache_read = record.cache_read_tokens or 0
    cache_write = record.cache_write_tokens or 0
    yield "input", (record.input_tokens or 0) + cache_read + cache_write
    yield "output", record.output_tokens or 0
    if record.cache_read_tokens is not None:
        yield "cache_read", cache_read
    if record.cache_write_tokens is not None:
        yield "cache_write", cache_write
