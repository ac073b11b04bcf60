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
# binutils for strip: the wheels' shared objects carry symbols only a debugger reads.
RUN apt-get update -qq && apt-get install --yes --no-install-recommends -qq binutils >/dev/null \
 && rm -rf /var/lib/apt/lists/*
# The project and every dependency, at the versions the lock pins, in a
# virtual environment that the runtime stage copies whole (same paths).
RUN python3 -m venv /opt/newsbot
COPY requirements.lock ./
RUN /opt/newsbot/bin/pip install --no-compile --requirement requirements.lock
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
# Slimmed for running only (~110 MB -> ~70 MB): no pip or setuptools, no test
# suites, stripped shared objects (not those under *.libs, which auditwheel
# patched), and the dependencies as compiled byte code alone, made once here
# so that a read-only root filesystem never compiles at start. newsbot keeps
# its sources (tracebacks show its lines; Alembic reads its revisions).
RUN /opt/newsbot/bin/pip install --no-compile --no-deps --constraint requirements.lock ".[postgres]" \
 && /opt/newsbot/bin/pip uninstall --yes --quiet setuptools pip \
 && cd /opt/newsbot/lib/python3.11/site-packages \
 && rm -rf benchmarks examples sqlalchemy/testing alembic/testing mako/testing regex/tests certifi/tests \
 && find . -name '__pycache__' -prune -exec rm -rf {} + \
 && find . -name '*.so*' -type f -not -path '*.libs/*' -exec strip --strip-unneeded {} + \
 && /opt/newsbot/bin/python -m compileall -q -b -j 0 -x '^\./newsbot/' . \
 && find . -path ./newsbot -prune -o -name '*.py' -type f -exec rm {} + \
 && /opt/newsbot/bin/python -m compileall -q -j 0 newsbot \
 && /opt/newsbot/bin/newsbot --version

# The runtime's root filesystem: the base without what only installs or
# administers packages (apt, dpkg, perl, the user tools once the user exists),
# documentation, locales and the parts of the standard library that newsbot
# never imports. Every ELF file left is checked to find all its libraries.
FROM ${BASE_IMAGE} AS rootfs
COPY --from=build /opt/newsbot /opt/newsbot
RUN groupadd --system --gid 10001 newsbot \
 && useradd --system --uid 10001 --gid newsbot --home-dir /srv --shell /usr/sbin/nologin newsbot \
 && mkdir -p /srv/content /srv/data /srv/public \
 && chown newsbot:newsbot /srv/data /srv/public \
 && stdlib=$(python3 -c 'import sysconfig; print(sysconfig.get_path("stdlib"))') \
 && rm -rf "$stdlib"/test "$stdlib"/idlelib "$stdlib"/tkinter "$stdlib"/turtledemo "$stdlib"/lib2to3 \
      "$stdlib"/pydoc_data "$stdlib"/ensurepip "$stdlib"/lib-dynload/_test* "$stdlib"/config-3.11-* \
 && python3 -m compileall -q -j 0 "$stdlib" >/dev/null \
 && for package in apt libapt-pkg6.0 gpgv debian-archive-keyring adduser debconf libdebconfclient0 \
      perl-base init-system-helpers e2fsprogs libext2fs2 libss2 logsave util-linux util-linux-extra \
      mount libmount1 libblkid1 libfdisk1 libsmartcols1 bsdutils login passwd libpam-modules \
      libpam-modules-bin libpam-runtime libpam0g libsemanage2 libsemanage-common libsepol2 libaudit1 \
      libaudit-common libcap-ng0 libsystemd0 libudev1 libseccomp2 libgnutls30 libp11-kit0 \
      libunistring2 libidn2-0 libtasn1-6 libnettle8 libhogweed6 libgcrypt20 libgpg-error0 libxxhash0 \
      liblz4-1 libzstd1 tar diffutils sysvinit-utils ncurses-bin hostname openssl \
      python3-pip-whl python3-setuptools-whl python3.11-venv python3-lib2to3 python3-distutils dpkg; do \
      dpkg-query -L "$package" 2>/dev/null | while read -r path; do \
        case "$path" in /usr/share/doc/*/copyright) ;; *) [ -d "$path" ] || rm -f "$path" ;; esac; \
      done; \
    done \
 && rm -rf /var/lib/dpkg /var/lib/apt /var/cache/* /var/log/* /etc/apt /usr/share/man /usr/share/info \
      /usr/share/locale /usr/share/lintian /usr/share/bash-completion /usr/lib/x86_64-linux-gnu/gconv \
      /usr/share/python-wheels \
 && find /usr/share/doc -type f ! -name copyright -delete \
 && python3 -c 'import pathlib, subprocess, sys; \
loader = next(pathlib.Path("/").glob("lib*/ld-linux*.so*")); \
elves = [p for d in ("/usr", "/opt") for p in pathlib.Path(d).rglob("*") \
         if p.is_file() and not p.is_symlink() and p.open("rb").read(4) == b"\x7fELF"]; \
broken = [f"{p}: {line.strip()}" for p in elves for line in subprocess.run( \
          [loader, "--list", p], capture_output=True, text=True).stdout.splitlines() if "not found" in line]; \
print("\n".join(broken)); sys.exit(bool(broken))' \
 && sh -c 'ls / >/dev/null && id -u >/dev/null && touch /tmp/x && test -f /tmp/x && rm /tmp/x' \
 && /opt/newsbot/bin/newsbot --version >/dev/null

# One layer, copied whole: what was removed above takes no room.
FROM scratch AS runtime-base
COPY --from=rootfs / /
ENV PATH=/opt/newsbot/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    NEWSBOT_STORE__CONTENT_DIR=/srv/content \
    NEWSBOT_FEEDS__OUTPUT_DIR=/srv/public \
    NEWSBOT_STATE__DATA_DIR=/srv/data \
    NEWSBOT_SERVICE__HOST=0.0.0.0 \
    NEWSBOT_SERVICE__PORT=8080 \
    NEWSBOT_LOG__FORMAT=json
WORKDIR /srv
EXPOSE 8080
# The check runs for the container's whole life, so it is cheap: python3 -m
# newsbot.probe is one GET /healthz on a bare socket (~30 ms of CPU; `newsbot
# healthcheck` loads the settings, ~250 ms). Every second, because an engine
# before Docker 25 has no --start-interval and probes first one interval after
# the start: healthy at most a second after the service listens.
HEALTHCHECK --interval=1s --timeout=5s --start-period=60s --retries=3 \
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
