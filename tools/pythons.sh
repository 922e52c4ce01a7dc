# Sourced by tools/test.sh and tools/lock.sh: the CPythons the suite runs on.
#
# The default one is `python3` (3.11 or later). Every other CPython 3.11 or later that pyenv
# has (the newest release of each X.Y, and free-threaded builds apart: tag X.Yt) is found by
# itself, so a machine that gains 3.14 tests it without an edit here.
# KAKEHASHI_TEST_PYTHONS="3.11 3.13" keeps only those tags (spaces or commas between them).
#
# Sets PYTHON_TAGS (X.Y or X.Yt, the default first) and PYTHON_PATHS (the interpreters).

_python_tag() {
    # X.Y, with a t for a free-threaded build; nothing for a Python older than 3.11 or not CPython.
    "$1" - <<'EOF' 2>/dev/null
import sys, sysconfig
if sys.implementation.name == "cpython" and sys.version_info >= (3, 11):
    print("%d.%d%s" % (*sys.version_info[:2], "t" if sysconfig.get_config_var("Py_GIL_DISABLED") else ""))
EOF
}

find_pythons() {
    PYTHON_TAGS=()
    PYTHON_PATHS=()
    local wanted=${KAKEHASHI_TEST_PYTHONS:-}
    wanted=" ${wanted//,/ } "
    local default candidate tag
    default=$(command -v python3) || { echo "no python3 on PATH" >&2; return 1; }
    local candidates=("$default")
    local root=${PYENV_ROOT:-$HOME/.pyenv}
    if [ -d "$root/versions" ]; then
        # Oldest first: a newer release of a tag already found replaces it (3.12.1, 3.12.4).
        while IFS= read -r candidate; do
            candidates+=("$candidate")
        done < <(ls -d "$root"/versions/*/bin/python3 2>/dev/null | sort -V)
    fi
    local i known
    for candidate in "${candidates[@]}"; do
        [ -x "$candidate" ] || continue
        tag=$(_python_tag "$candidate")
        [ -n "$tag" ] || continue
        if [ -n "${KAKEHASHI_TEST_PYTHONS:-}" ] && [[ $wanted != *" $tag "* ]]; then
            continue
        fi
        known=
        for i in "${!PYTHON_TAGS[@]}"; do
            if [ "${PYTHON_TAGS[$i]}" = "$tag" ]; then
                known=1
                # python3 stays the one of its tag; pyenv's newer release of a tag wins.
                [ "${PYTHON_PATHS[$i]}" = "$default" ] || PYTHON_PATHS[i]=$candidate
            fi
        done
        [ -n "$known" ] && continue
        PYTHON_TAGS+=("$tag")
        PYTHON_PATHS+=("$candidate")
    done
    if [ "${#PYTHON_TAGS[@]}" -eq 0 ]; then
        echo "no CPython 3.11 or later found${KAKEHASHI_TEST_PYTHONS:+ among: $KAKEHASHI_TEST_PYTHONS}" >&2
        return 1
    fi
}
