# newsbot as a container service: `newsbot run` builds the feeds, serves them,
# and posts to the configured targets. Buildable by the classic builder and by
# BuildKit alike (no RUN --mount).
#
#   docker build -t newsbot .                       # the service, no articles inside
#   docker build --target sample -t newsbot:sample .  # the same, with the sample store in /srv/content
#   docker build --build-arg BASE_IMAGE=my-debian-python:12 -t newsbot .
#
# BASE_IMAGE is any Debian 12 image with Python 3.11 and its venv module:
# python:3.11-slim-bookworm, or Debian's own python3 and python3-venv
# (tests/container/base-image.sh makes one from Debian packages).
# See the README's "Container" section for how to run it.

ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# The project and every dependency, at the versions the lock pins, in a
# virtual environment that the runtime stage copies whole (same base, same paths).
RUN python3 -m venv /opt/newsbot
COPY requirements.lock ./
RUN /opt/newsbot/bin/pip install --no-compile --requirement requirements.lock
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
RUN /opt/newsbot/bin/pip install --no-compile --no-deps --constraint requirements.lock ".[postgres]" \
 && /opt/newsbot/bin/pip uninstall --yes --quiet setuptools pip \
 && find /opt/newsbot -name '__pycache__' -prune -exec rm -rf {} + \
 && /opt/newsbot/bin/python -m compileall -q -j 0 /opt/newsbot/lib

FROM ${BASE_IMAGE} AS runtime-base
ENV PATH=/opt/newsbot/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    NEWSBOT_STORE__CONTENT_DIR=/srv/content \
    NEWSBOT_FEEDS__OUTPUT_DIR=/srv/public \
    NEWSBOT_STATE__DATA_DIR=/srv/data \
    NEWSBOT_SERVICE__HOST=0.0.0.0 \
    NEWSBOT_SERVICE__PORT=8080 \
    NEWSBOT_LOG__FORMAT=json
RUN groupadd --system --gid 10001 newsbot \
 && useradd --system --uid 10001 --gid newsbot --home-dir /srv --shell /usr/sbin/nologin newsbot \
 && mkdir -p /srv/content /srv/data /srv/public \
 && chown newsbot:newsbot /srv/data /srv/public
COPY --from=build /opt/newsbot /opt/newsbot
WORKDIR /srv
EXPOSE 8080
# The check runs for the container's whole life: python3 -m newsbot.probe needs only
# urllib (~40 ms of CPU; `newsbot healthcheck` loads the settings, ~250 ms).
HEALTHCHECK --interval=2s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python3", "-m", "newsbot.probe"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["newsbot"]
CMD ["run"]

# With the sample store (Wikinews, CC BY 2.5) baked in: `--target sample`.
FROM runtime-base AS sample
COPY --chown=root:root content /srv/content
USER newsbot:newsbot
VOLUME ["/srv/data", "/srv/public"]

# The default: the service alone; the store is mounted at /srv/content.
FROM runtime-base AS runtime
USER newsbot:newsbot
VOLUME ["/srv/data", "/srv/public"]
