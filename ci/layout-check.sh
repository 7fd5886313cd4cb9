#!/usr/bin/env bash
# ci/layout-check.sh -- the platform seam, checked: generic sources (the
# library's lib/src/*.c and lib/src/redis/, the CLI's lib/cli/*.c, the
# conformance contender) include only ISO C headers and our own, and never
# test for a platform.  Everything a platform provides lives in a
# per-platform directory (posix/, win32/, ...) picked by CMake, so a port
# adds a directory and MSVC, which has no <pthread.h> or <unistd.h>, builds
# the generic files as they are.  See PORTING.md.
#
#   ci/layout-check.sh            check; exit 1 with file:line on a breach
# (run by ci/test.sh after the format check)
set -euo pipefail
cd "$(dirname "$0")/.."

# C11's standard headers (ISO/IEC 9899:2011 7.1.2), minus <threads.h>,
# which neither glibc < 2.28 nor MSVC < 17.8 ship.
iso='assert|complex|ctype|errno|fenv|float|inttypes|iso646|limits|locale|math'
iso="$iso|setjmp|signal|stdalign|stdarg|stdatomic|stdbool|stddef|stdint"
iso="$iso|stdio|stdlib|stdnoreturn|string|tgmath|time|uchar|wchar|wctype"

# Generic files: tracked C sources directly in these directories (their
# subdirectories are the platform ones).
generic=()
for d in lib/src lib/src/redis lib/cli conformance/contender; do
    while IFS= read -r f; do
        generic+=("$f")
    done < <(git ls-files -co --exclude-standard -- "$d" |
        grep -E "^$d/[^/]+\.c$" || true)
done

bad=0
for f in "${generic[@]}"; do
    # System headers outside ISO C.
    while IFS= read -r hit; do
        echo "layout: $f:$hit: not an ISO C header in a generic file" \
            "(move the call behind a platform function)"
        bad=1
    done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*<' "$f" |
        grep -vE "<($iso)\.h>" || true)
    # Platform tests.
    while IFS= read -r hit; do
        echo "layout: $f:$hit: platform test in a generic file" \
            "(a port adds a directory, not an #ifdef)"
        bad=1
    done < <(grep -nE '^[[:space:]]*#[[:space:]]*(if|ifdef|ifndef|elif).*(_WIN32|_MSC_VER|__linux__|__APPLE__|__FreeBSD__|__unix__|__MINGW)' "$f" || true)
done
if [ "$bad" -ne 0 ]; then
    exit 1
fi
echo "layout: ${#generic[@]} generic files include only ISO C and test no platform"
