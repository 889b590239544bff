#!/usr/bin/env bash
# Set up and run the whole test suite on a fresh Debian machine with Python 3.11:
#   system packages (ffmpeg, PostgreSQL, a C compiler for the optional extension),
#   a virtualenv with the CPU build of torch,
#   the package with its test extras, a throwaway PostgreSQL server, then pytest.
# Usage: scripts/test.sh [extra pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
command -v cc >/dev/null 2>&1 || missing+=(gcc)  # compiles services/audio/_kernels.c
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)  # the browser tests (tests/web)
if ((${#missing[@]})); then
    if [[ "$(id -u)" == 0 ]]; then
        echo "test.sh: installing ${missing[*]}" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "test.sh: please install ${missing[*]} (Debian packages); their tests will be skipped" \
             "(without a compiler, the NumPy paths are tested alone)" >&2
    fi
fi

PYTHON="${PYTHON:-python3}"
[[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q -c constraints.txt -e ".[test,postgres,musicgen]"

if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; then
    pg_env="$(scripts/postgres-test-server.sh start)"  # on its own line: a failed start fails the run
    eval "$pg_env"  # exports TEST_POSTGRES_URL
    trap 'scripts/postgres-test-server.sh stop >/dev/null 2>&1 || true' EXIT
fi

# Coverage of the whole package, CLI and other subprocesses included (pyproject.toml's
# [tool.coverage.run]); the floor holds for the whole suite, not for a run narrowed by arguments.
# worksteal: the other worker takes over the short tests queued behind a slow one.
floor=(--cov-fail-under=95); (($#)) && floor=()
DGX_MUSIC_TEST_SPEC_COVERAGE=1 python -m pytest -n 2 --dist worksteal -p no:cacheprovider \
    --cov=services --cov-report=term "${floor[@]}" "$@"
