# syntax=docker/dockerfile:1
#
# dockguard's container image.
#
#   docker build -t dockguard:local .
#
# Two stages: the first builds a virtualenv with dockguard and its
# dependencies (wheels from PyPI, no compiler needed); the second copies that
# virtualenv onto a clean python:3.11-slim at the same path, so its scripts'
# shebangs stay valid.
#
# At run time the container:
#   - runs as uid/gid 10001 (not root); give it the Docker socket's group with
#     `group_add` (compose) or `--group-add` (docker run);
#   - writes nothing outside /tmp and the volumes you mount (run it with a
#     read-only root: `read_only: true` / `--read-only`);
#   - needs no shell: ENTRYPOINT, CMD and HEALTHCHECK are exec form.
#
# Without a configuration of your own it runs the built-in one below, a
# drop-in for Tecnativa's / linuxserver's docker-socket-proxy: plain TCP on
# port 2375 for the container networks, permissions from the same environment
# variables (CONTAINERS=1, POST=0, ALLOW_START=1, ...). To use groups, mutual
# TLS or Unix socket listeners, mount your own file over
# /etc/dockguard/dockguard.toml, with an [admin] table: the HEALTHCHECK reads
# its address there. See docs/recipes.md.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/dockguard
COPY pyproject.toml README.md /src/
COPY src /src/src
COPY twisted /src/twisted
# twistd finds `twistd dockguard` through Twisted's plugin cache: write the
# cache now, since the run-time root is read-only.
RUN /opt/dockguard/bin/pip install /src \
    && /opt/dockguard/bin/python -c "from twisted.plugin import IPlugin, getPlugins; list(getPlugins(IPlugin))" \
    && /opt/dockguard/bin/dockguard version

FROM ${PYTHON_IMAGE}
# The user dockguard runs as, and /run/dockguard for Unix socket listeners
# (mount a volume per tool under it: docs/recipes.md).
RUN groupadd --system --gid 10001 dockguard \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin dockguard \
    && install -d -o 10001 -g 10001 -m 0755 /run/dockguard
COPY --from=build /opt/dockguard /opt/dockguard

# The built-in configuration: the Tecnativa / linuxserver drop-in.
COPY <<"EOF" /etc/dockguard/dockguard.toml
# dockguard's built-in configuration (the container image's default).
#
# A drop-in for Tecnativa's and linuxserver's docker-socket-proxy: plain TCP
# on port 2375 of the container's networks, and, because this file has no
# [identities] or [groups], the permissions come from the same environment
# variables (CONTAINERS=1, POST=0, ALLOW_START=1, ...): docs/migration.md.
#
# No "upstream" here, so SOCKET_PATH (or a unix:// DOCKER_HOST) still chooses
# the daemon socket; the default is /var/run/docker.sock.

# Every caller on this listener is "socket-proxy". Plain TCP on a non-loopback
# address must be opted into (insecure); only private (RFC 1918) and loopback
# sources are answered, which covers Docker's default address pools.
[[listeners]]
url = "tcp://0.0.0.0:2375?identity=socket-proxy&insecure=1&allow=127.0.0.0/8,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16"

# /health (for the HEALTHCHECK) and /metrics, inside the container only.
[admin]
listen = "tcp://127.0.0.1:9180"
EOF

ENV PATH=/opt/dockguard/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
WORKDIR /tmp
EXPOSE 2375
# --pidfile= : no twistd.pid, so nothing is written to the working directory.
ENTRYPOINT ["twistd", "-n", "--pidfile=", "dockguard"]
CMD ["--config", "/etc/dockguard/dockguard.toml"]
HEALTHCHECK --interval=30s --timeout=10s --start-period=10s --retries=3 \
    CMD ["dockguard", "healthcheck", "--config", "/etc/dockguard/dockguard.toml"]
