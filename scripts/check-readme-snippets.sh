#!/usr/bin/env bash
# Checks that every README code block marked `<!-- snippet: FILE -->` still
# appears, line for line, in FILE, so the README cannot drift from code that
# CI compiles.
set -euo pipefail
cd "$(dirname "$0")/.."
readme=${1:-README.md}
status=0
count=0
while IFS= read -r source; do
  count=$((count + 1))
  block=$(mktemp)
  # The n-th marked block: lines between its ```cpp fence and the closing fence.
  awk -v want="$count" '
    /^<!-- snippet: / { seen++; armed = (seen == want); next }
    armed && /^```cpp/ { inside = 1; next }
    inside && /^```/ { exit }
    inside { print }
  ' "$readme" >"$block"
  if [ ! -s "$block" ]; then
    echo "README snippet $count ($source): no code block follows the marker" >&2
    status=1
  elif ! awk '
      NR == FNR { want[n++] = $0; next }
      { have[m++] = $0 }
      END {
        for (i = 0; i + n <= m; i++) {
          ok = 1
          for (j = 0; j < n; j++) if (have[i + j] != want[j]) { ok = 0; break }
          if (ok) exit 0
        }
        exit 1
      }' "$block" "$source"; then
    echo "README snippet $count is no longer in $source:" >&2
    sed 's/^/    /' "$block" >&2
    status=1
  fi
  rm -f "$block"
done < <(sed -n 's/^<!-- snippet: \(.*\) -->$/\1/p' "$readme")
echo "README snippets: $count checked"
exit $status
