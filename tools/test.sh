#!/usr/bin/env bash
# Install everything the test suite needs, then run it (ruff, mypy, pytest with coverage).
# Used by the README's test command and by CI (.ci/run), so both always agree.
#
#   bash tools/test.sh            # whole suite (epoll), then the server tests on the portable poller
#   bash tools/test.sh -k routing # extra arguments go to pytest (one run, default poller)
set -euo pipefail
cd "$(dirname "$0")/.."

# System tools the integration tests drive: curl, nginx and HAProxy (real peers), Chromium (a real
# browser), openssl (test certificates, made at test time), promtool (from the prometheus
# package: it checks the /metrics exposition).
need=()
command -v curl >/dev/null || need+=(curl)
command -v openssl >/dev/null || need+=(openssl)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
command -v chromium >/dev/null || need+=(chromium)
command -v promtool >/dev/null || need+=(prometheus)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    else
        echo "tools/test.sh: please install: ${need[*]} (tests that need them will be skipped)" >&2
    fi
fi

python3 -m pip install -q -e '.[test]'
python3 -m pytest "$@"
if [ $# -eq 0 ]; then
    # The poller of macOS and Windows (selectors), forced on Linux: every server the tests
    # start uses it (tests/conftest.py reads KAKEHASHI_TEST_POLLER).  The tests that start
    # servers run again; the sans-I/O core's and the client's ran above, once is enough.
    KAKEHASHI_TEST_POLLER=portable python3 -m pytest -q --no-cov \
        tests/server tests/integration tests/app tests/test_readme.py
fi
