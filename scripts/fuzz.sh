#!/usr/bin/env bash
# Run every native Go fuzz target for FUZZTIME each (default 15s), one
# after another: go test runs one -fuzz target per invocation. A crash
# stops the run and leaves its input under the package's
# testdata/fuzz/<target>/, where plain `go test` replays it from then on:
# commit it with the fix as a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-15s}

targets=()
while IFS= read -r file; do
	pkg=./$(dirname "$file")
	while IFS= read -r name; do
		targets+=("$pkg $name")
	done < <(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(f \*testing\.F).*/\1/p' "$file")
done < <(git ls-files '*_test.go' | sort)

echo "fuzz: ${#targets[@]} targets, $FUZZTIME each"
for t in "${targets[@]}"; do
	read -r pkg name <<<"$t"
	start=$SECONDS
	ok=false
	for attempt in 1 2; do
		if out=$(go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "$pkg" 2>&1); then
			ok=true
			break
		fi
		# A crash leaves its input behind. Without one, go test's fuzzer
		# sometimes reports "context deadline exceeded" when a slow run
		# (an fsync on a loaded disk) is under way as its time ends: that
		# is the fuzzer's own timing, so the target gets one more run.
		if grep -q 'Failing input written' <<<"$out" || ! grep -q 'context deadline exceeded' <<<"$out"; then
			break
		fi
		echo "fuzz: $pkg $name: the fuzzer's deadline passed mid-run, no input failed; once more"
	done
	if ! $ok; then
		echo "$out"
		echo "fuzz: $pkg $name FAILED" >&2
		exit 1
	fi
	execs=$(grep -o 'execs: [0-9]*' <<<"$out" | tail -1)
	echo "fuzz: $pkg $name ok ($execs, $((SECONDS - start))s)"
done
