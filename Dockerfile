# chunkline serve in a container. Build and run (see docs/server.md, "Operating chunkline"):
#   docker build -t chunkline .
#   docker run --rm -p 8080:8080 -e ANTHROPIC_API_KEY -e CHUNKLINE_API_KEYS chunkline
# The first stage builds the wheel; the second installs it with the server extra, on a slim
# Python, and runs as an unprivileged user.
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
RUN pip install --no-cache-dir build && python -m build --wheel --outdir /dist .

FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=build /dist/ /tmp/dist/
RUN pip install --no-cache-dir "$(ls /tmp/dist/chunkline-*.whl)[server]" \
    && rm -rf /tmp/dist \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin chunkline
USER 10001
EXPOSE 8080
# /healthz answers 200 once the server is up; python, not curl: the slim image has no curl.
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status != 200)"]
# SIGTERM starts the graceful shutdown (CHUNKLINE_SHUTDOWN_TIMEOUT, 30 s by default): give
# `docker stop` longer than that, as in `docker stop -t 40`.
STOPSIGNAL SIGTERM
ENTRYPOINT ["chunkline", "serve"]
CMD ["--host", "0.0.0.0", "--port", "8080"]
