#!/bin/sh
# Set up and run synthspot's whole test suite on a Debian machine with Python 3.11 (as root).
# Installs the services the tests start themselves (Redis, Prometheus/promtool), a virtual
# environment in ./.venv with the project and its test extras, then runs pytest.
set -eu
cd "$(dirname "$0")/.."

if command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    pkgs="redis-server prometheus g++"  # g++: torch.compile's CPU backend (the --compile test)
    python3 -m venv --help >/dev/null 2>&1 || pkgs="$pkgs python3-venv"
    apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
    # the packages start system services; the tests run their own on free ports
    (service redis-server stop || true) >/dev/null 2>&1
    (service prometheus stop || true) >/dev/null 2>&1
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e '.[test,ci]'
exec .venv/bin/python -m pytest "$@"
