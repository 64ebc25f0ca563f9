# dockguard's container image.
#
#   docker build -t dockguard:local .
#
# Any builder builds it (the classic one or BuildKit; no frontend image, no
# heredocs). Two stages: the first builds a virtualenv with dockguard and its
# dependencies (wheels from PyPI, no compiler needed); the second copies that
# virtualenv onto a clean python:3.11-slim at the same path, so its scripts'
# shebangs stay valid. Another base with Python 3.11 or newer, `python` on the
# PATH and `groupadd`/`useradd` (Debian's shape) works too:
# `--build-arg PYTHON_IMAGE=...` (tests/test_e2e_image.py builds on one made
# from Debian's packages).
#
# At run time the container:
#   - runs as uid/gid 10001 (not root); give it the Docker socket's group with
#     `group_add` (compose) or `--group-add` (docker run);
#   - writes nothing outside /tmp and the volumes you mount (run it with a
#     read-only root: `read_only: true` / `--read-only`);
#   - needs no shell: ENTRYPOINT, CMD and HEALTHCHECK are exec form.
#
# Without a configuration of your own it runs the built-in one,
# docker/dockguard.toml: a drop-in for Tecnativa's / linuxserver's
# docker-socket-proxy: plain TCP on port 2375 for the container networks,
# permissions from the same environment variables (CONTAINERS=1, POST=0,
# ALLOW_START=1, ...). To use groups, mutual
# TLS or Unix socket listeners, mount your own file over
# /etc/dockguard/dockguard.toml, with an [admin] table: the HEALTHCHECK reads
# its address there. See docs/recipes.md.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
COPY pyproject.toml README.md /src/
COPY src /src/src
COPY twisted /src/twisted
# A virtualenv with dockguard and its dependencies, then out of it pip and
# setuptools (needed to install, not to run) and Twisted's own test suites,
# about half of its size (nothing outside them imports them). twistd finds
# `twistd dockguard` through Twisted's plugin cache: write the cache now,
# since the run-time root is read-only. (One RUN: every step costs a
# container, which is slow with the classic builder on the vfs driver.)
RUN python -m venv /opt/dockguard \
    && /opt/dockguard/bin/pip install --no-cache-dir --disable-pip-version-check /src \
    && /opt/dockguard/bin/python -m pip uninstall --yes --quiet pip setuptools \
    && find /opt/dockguard/lib -depth -type d -name test -path "*/site-packages/twisted/*" -exec rm -r {} + \
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

# The built-in configuration, the Tecnativa / linuxserver drop-in: docker/dockguard.toml.
COPY docker/dockguard.toml /etc/dockguard/dockguard.toml

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
