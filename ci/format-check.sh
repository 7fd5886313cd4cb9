#!/usr/bin/env bash
# Fails if any C/C++ source is not clang-formatted (repo .clang-format).
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files -co --exclude-standard -- 'lib' 'conformance' 'bench' 'stress' \
    | grep -E '\.(c|h|cc|cpp|hpp)$' || true)
if [ ${#files[@]} -eq 0 ]; then
    echo "format: no sources"
    exit 0
fi
clang-format --dry-run --Werror "${files[@]}"
echo "format: ${#files[@]} files clean"
