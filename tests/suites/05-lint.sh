#!/usr/bin/env bash
# Static checks: clang-format (the repo's .clang-format) and cppcheck over the
# sources. Fast; any finding fails the suite.
set -euo pipefail
cd "$1"
files=$(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c' 'bench/*.c' 2>/dev/null || find src tests bench -name '*.[ch]')
echo "# clang-format --dry-run --Werror ($(echo "$files" | wc -w) files)"
echo "$files" | xargs clang-format --dry-run --Werror
echo "# cppcheck src/"
cppcheck --quiet --error-exitcode=1 --enable=warning,portability --std=c11 --inline-suppr \
    -D_GNU_SOURCE -DCT_HAVE_POSTGRES=1 '-DCT_VERSION="lint"' -I src src
echo "lint: clean"
