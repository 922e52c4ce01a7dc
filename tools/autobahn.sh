#!/usr/bin/env bash
# Autobahn|Testsuite, the WebSocket conformance suite, installed where git does not look.
#
#   bash tools/autobahn.sh install                  # once; again only when the pins change
#   bash tools/autobahn.sh fuzzingclient SPEC.json  # the suite as a client, testing a server
#   bash tools/autobahn.sh fuzzingserver SPEC.json  # the suite as a server, testing a client
#   bash tools/autobahn.sh wstest ARGS...           # wstest itself
#
# The suite is Python 2 only.  It runs on pyenv's 2.7.18 (AUTOBAHN_PYTHON to use another)
# from the pins of tools/autobahn-requirements.txt, installed with --target into
# .venvs/autobahn (AUTOBAHN_DIR to move it).  Exit status 3: no such Python (callers skip).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
python2=${AUTOBAHN_PYTHON:-$HOME/.pyenv/versions/2.7.18/bin/python}
target=${AUTOBAHN_DIR:-$here/.venvs/autobahn}
pins=$here/tools/autobahn-requirements.txt

[ -x "$python2" ] || { echo "autobahn.sh: no Python 2.7 at $python2 (set AUTOBAHN_PYTHON)" >&2; exit 3; }

install() {
    local digest
    digest=$(sha256sum "$pins" | cut -d' ' -f1)
    if [ "$(cat "$target/pins.sha256" 2>/dev/null)" = "$digest" ]; then
        return 0
    fi
    # Built beside the target and renamed into place: an interrupted install leaves no
    # half-filled directory that looks done.
    local build=$target.new.$$
    rm -rf "$build"
    mkdir -p "$build"
    if ! PYTHONPATH= "$python2" -m pip install -q --disable-pip-version-check --no-cache-dir \
            --no-deps --target "$build/lib" -r "$pins" > "$build/pip.log" 2>&1; then
        cat "$build/pip.log" >&2
        rm -rf "$build"
        echo "autobahn.sh: pip could not install the pins" >&2
        exit 1
    fi
    rm "$build/pip.log"
    echo "$digest" > "$build/pins.sha256"
    rm -rf "$target"
    mv "$build" "$target"
}

wstest() {
    install
    # The working directory is left off sys.path: a file named autobahn.py there would
    # shadow the package.  addsitedir reads zope's .pth file.
    PYTHONPATH= PYTHONWARNINGS=ignore exec "$python2" -c '
import site, sys
sys.path[:] = [p for p in sys.path if p not in ("", ".")]
site.addsitedir(sys.argv[1])
sys.argv = ["wstest"] + sys.argv[2:]
from autobahntestsuite.wstest import run
run()
' "$target/lib" "$@"
}

what=${1:-}
[ $# -gt 0 ] && shift
case $what in
    install) install ;;
    fuzzingclient | fuzzingserver) wstest --mode "$what" --spec "$@" ;;
    wstest) wstest "$@" ;;
    *) echo "usage: tools/autobahn.sh install | fuzzingclient SPEC | fuzzingserver SPEC | wstest ARGS..." >&2; exit 2 ;;
esac
