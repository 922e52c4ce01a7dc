#!/usr/bin/env bash
# Autobahn|Testsuite (wstest), the WebSocket conformance suite, in a git-ignored directory.
#
#   bash tools/autobahn.sh install                 # idempotent: (re)installs only when the pins change
#   bash tools/autobahn.sh fuzzingserver SPEC.json # a fuzzing server that tests a client (ours)
#   bash tools/autobahn.sh fuzzingclient SPEC.json # a fuzzing client that tests a server
#   bash tools/autobahn.sh wstest ARGS...          # wstest itself
#
# autobahntestsuite is Python 2 only: it runs on the Python 2.7 pyenv provides
# ($AUTOBAHN_PYTHON overrides it) from pinned packages (tools/autobahn-requirements.txt)
# installed with --target into .venvs/autobahn ($AUTOBAHN_DIR overrides it).  Exit status 3
# means that Python 2.7 is missing, so callers can skip.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
py2=${AUTOBAHN_PYTHON:-$HOME/.pyenv/versions/2.7.18/bin/python}
dir=${AUTOBAHN_DIR:-$root/.venvs/autobahn}
req=$root/tools/autobahn-requirements.txt

if [ ! -x "$py2" ]; then
    echo "autobahn.sh: no Python 2.7 at $py2 (set AUTOBAHN_PYTHON)" >&2
    exit 3
fi

install() {
    local stamp want
    want=$(sha256sum "$req" | cut -d' ' -f1)
    stamp=$dir/installed.sha256
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return 0
    fi
    # Into a fresh directory first, moved into place when complete: an interrupted install
    # never leaves a half-filled one behind the stamp.
    mkdir -p "$(dirname "$dir")"
    local tmp
    tmp=$(mktemp -d "$dir.tmp.XXXXXX")
    if ! PYTHONPATH= "$py2" -m pip install --disable-pip-version-check --no-cache-dir \
        --no-deps --target "$tmp/lib" -r "$req" > "$tmp/pip.log" 2>&1; then
        cat "$tmp/pip.log" >&2
        rm -rf "$tmp"
        echo "autobahn.sh: installing the pinned requirements failed" >&2
        exit 1
    fi
    rm "$tmp/pip.log"
    echo "$want" > "$tmp/installed.sha256"
    rm -rf "$dir"
    mv "$tmp" "$dir"
}

wstest() {
    install
    # site.addsitedir reads the .pth files (zope's namespace package); '' is dropped from
    # sys.path so that a file named autobahn.py in the working directory cannot shadow the
    # package.
    PYTHONPATH= PYTHONWARNINGS=ignore exec "$py2" -c '
import site, sys
sys.path[:] = [p for p in sys.path if p not in ("", ".")]
site.addsitedir(sys.argv[1])
sys.argv = ["wstest"] + sys.argv[2:]
from autobahntestsuite.wstest import run
run()
' "$dir/lib" "$@"
}

command=${1:-}
shift || true
case $command in
    install) install ;;
    fuzzingserver | fuzzingclient) wstest --mode "$command" --webport 0 --spec "$@" ;;
    wstest) wstest "$@" ;;
    *)
        echo "usage: tools/autobahn.sh install | fuzzingserver SPEC | fuzzingclient SPEC | wstest ARGS" >&2
        exit 2
        ;;
esac
