#!/usr/bin/env bash
# Black-box API tests (raw HTTP per the contract + the official Scaleway JS SDK),
# against the release build and the ASan+UBSan build, on SQLite.
set -euo pipefail
cd "$1"
CT_TEST_REPORTER=dot tests/api/run.sh
if [ -x build-asan/cockpit-tokens ]; then
    echo "--- again under ASan+UBSan"
    CT_BIN=build-asan/cockpit-tokens CT_TEST_REPORTER=dot tests/api/run.sh
fi
