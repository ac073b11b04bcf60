# syntax=docker/dockerfile:1.7
# newsbot as a container service: `newsbot run` builds the feeds, serves them,
# and posts to the configured targets.
#
#   docker build -t newsbot .
#   docker run -p 8080:8080 -v "$PWD/content:/srv/content:ro" -v newsbot-data:/srv/data \
#     -v newsbot-public:/srv/public newsbot

ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md LICENSE requirements.lock ./
COPY src ./src
# Wheels of the project and of every dependency at the version the lock pins.
RUN python -m pip wheel --wheel-dir /wheels --constraint requirements.lock ".[postgres]"

FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    NEWSBOT_STORE__CONTENT_DIR=/srv/content \
    NEWSBOT_FEEDS__OUTPUT_DIR=/srv/public \
    NEWSBOT_STATE__DATA_DIR=/srv/data \
    NEWSBOT_SERVICE__HOST=0.0.0.0 \
    NEWSBOT_SERVICE__PORT=8080 \
    NEWSBOT_LOG__FORMAT=json
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m pip install --no-index --find-links=/wheels "newsbot[postgres]" \
 && groupadd --system --gid 10001 newsbot \
 && useradd --system --uid 10001 --gid newsbot --home-dir /srv --shell /usr/sbin/nologin newsbot \
 && mkdir -p /srv/content /srv/data /srv/public \
 && chown newsbot:newsbot /srv/data /srv/public
COPY --chown=root:root content /srv/content
USER newsbot:newsbot
WORKDIR /srv
VOLUME ["/srv/data", "/srv/public"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["newsbot", "healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["newsbot"]
CMD ["run"]
