#!/usr/bin/env bash
# Self-check of tests/reference/ref.py against the in-toto reference itself.
#
# Usage: tests/reference/selfcheck.sh /path/to/venv/bin/python
#
# The venv must have tests/reference/requirements.txt installed; the reference
# CLI tools (in-toto-sign, in-toto-verify, in-toto-run) are taken from the same
# bin directory. For every test-only key type and both envelopes (classic
# Metablock, DSSE) this checks that what ref.py writes is accepted by the
# reference's own tools, that it is rejected for a wrong key, and that
# awkward text (non-ASCII, quotes, backslash, tab, newline) survives unchanged.
# It also checks links written by in-toto-run, and ref.py sign-link on them.
# Works from any cwd; everything happens in a mktemp dir that is removed.
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 VENV_PYTHON" >&2
  exit 2
fi

py_dir=$(cd "$(dirname "$1")" && pwd)
PY="$py_dir/$(basename "$1")"
BIN="$py_dir"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REF="$HERE/ref.py"
KEYS=$(cd "$HERE/../../keys-example" && pwd)
# Deterministic text I/O for in-toto-run's recorded streams, whatever the locale.
export PYTHONUTF8=1

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir "$WORK/empty-link-dir"

README=$'héllo "q" \\ back\ttab\nnewline ✓'
EXPIRES=2099-01-01T00:00:00Z
WRONG_PUB="$KEYS/test-only-bob-ed25519.pub"

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

# expect_rc WANT CMD...: run CMD quietly, require exit code WANT.
expect_rc() {
  local want=$1 rc=0
  shift
  "$@" >"$WORK/out.txt" 2>&1 || rc=$?
  if [[ $rc -ne $want ]]; then
    cat "$WORK/out.txt" >&2
    fail "exit $rc (wanted $want): $*"
  fi
}

# signed_part FILE: print the bare signed object (Metablock "signed" or
# decoded DSSE payload) of a signed file as JSON.
signed_part() {
  "$PY" - "$1" <<'EOF'
import base64, json, sys
data = json.load(open(sys.argv[1], encoding="utf-8"))
if "payload" in data:
    print(base64.b64decode(data["payload"]).decode("utf-8"))
else:
    print(json.dumps(data["signed"]))
EOF
}

# field FILE KEY...: print a (nested) field of the signed part, raw, followed
# by a "." so that command substitution keeps trailing newlines.
field() {
  local file=$1
  shift
  signed_part "$file" | "$PY" -c '
import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1:]:
    v = v[k]
sys.stdout.write(v + ".")' "$@"
}

for key in ed25519 ecdsa-p256 ecdsa-p384 rsa; do
  priv="$KEYS/test-only-$key.pem"
  pub="$KEYS/test-only-$key.pub"
  keyid=$("$PY" "$REF" keyid "$pub")
  [[ $keyid =~ ^[0-9a-f]{64}$ ]] || fail "bad keyid '$keyid' for $key"
  "$PY" "$REF" keyobj "$pub" >"$WORK/keyobj.json"

  bare="$WORK/$key.bare.json"
  "$PY" "$REF" make-layout --out "$bare" --expires "$EXPIRES" \
    --readme "$README" --key "$pub"

  for env in classic dsse; do
    flag=()
    [[ $env == dsse ]] && flag=(--dsse)
    layout="$WORK/$key.$env.layout"
    "$PY" "$REF" sign-layout --in "$bare" --key "$priv" --out "$layout" "${flag[@]}"

    expect_rc 0 "$BIN/in-toto-sign" --verify -f "$layout" -k "$pub"
    expect_rc 1 "$BIN/in-toto-sign" --verify -f "$layout" -k "$WRONG_PUB"
    expect_rc 0 "$BIN/in-toto-verify" --layout "$layout" \
      --verification-keys "$pub" --link-dir "$WORK/empty-link-dir"
    expect_rc 1 "$BIN/in-toto-verify" --layout "$layout" \
      --verification-keys "$WRONG_PUB" --link-dir "$WORK/empty-link-dir"

    [[ $(field "$layout" readme) == "$README." ]] || fail "$key/$env: readme changed"
    signed_part "$layout" | "$PY" -c '
import json, sys
layout = json.load(sys.stdin)
keyobj = json.load(open(sys.argv[1]))
assert layout["keys"] == {sys.argv[2]: keyobj}, "keys entry differs from keyobj"
assert layout["steps"] == [] and layout["inspect"] == []' "$WORK/keyobj.json" "$keyid" \
      || fail "$key/$env: keys/steps differ"
    ok "$key $env layout: signed by ref.py, verified by in-toto-sign and in-toto-verify"
  done

  # Links written by in-toto-run, classic and DSSE.
  for env in classic dsse; do
    flag=()
    [[ $env == dsse ]] && flag=(--use-dsse)
    run_dir="$WORK/run-$key-$env"
    mkdir "$run_dir"
    printf 'artifact\n' >"$run_dir/x"
    (cd "$run_dir" && expect_rc 0 "$BIN/in-toto-run" --step-name demo \
      --signing-key "$priv" --materials x --products x -s "${flag[@]}" \
      -- python3 -c "print('héllo \"q\" \\\\ \t tab')")
    link="$run_dir/demo.${keyid:0:8}.link"
    [[ -f $link ]] || fail "$key/$env: in-toto-run did not write $link"
    expect_rc 0 "$BIN/in-toto-sign" --verify -f "$link" -k "$pub"
    expect_rc 1 "$BIN/in-toto-sign" --verify -f "$link" -k "$WRONG_PUB"
    [[ $(field "$link" byproducts stdout) == $'héllo "q" \\ \t tab\n.' ]] \
      || fail "$key/$env: recorded stdout changed"

    # Re-sign the bare link with ref.py sign-link and verify again.
    signed_part "$link" >"$run_dir/bare-link.json"
    resigned="$run_dir/resigned.link"
    "$PY" "$REF" sign-link --in "$run_dir/bare-link.json" --key "$priv" \
      --out "$resigned" "${flag[@]/--use-dsse/--dsse}"
    expect_rc 0 "$BIN/in-toto-sign" --verify -f "$resigned" -k "$pub"
    # Same key, same signed bytes: deterministic schemes give identical files.
    if [[ $key == ed25519 ]]; then
      cmp -s "$link" "$resigned" || fail "$key/$env: sign-link output differs from in-toto-run's"
    fi
    ok "$key $env link: in-toto-run link verified; ref.py sign-link verified"
  done
done

# Multiple layout keys, and an encrypted signing key with --password-file.
multi="$WORK/multi.layout"
"$PY" "$REF" make-layout --out "$WORK/multi.bare.json" --expires "$EXPIRES" \
  --readme "$README" --key "$KEYS/test-only-ed25519.pub" --key "$KEYS/test-only-bob-ed25519.pub"
for env in classic dsse; do
  flag=()
  [[ $env == dsse ]] && flag=(--dsse)
  "$PY" "$REF" sign-layout --in "$WORK/multi.bare.json" --out "$multi" "${flag[@]}" \
    --key "$KEYS/test-only-ed25519-encrypted.pem" --key "$KEYS/test-only-rsa.pem" \
    --password-file "$KEYS/test-only-password.txt"
  expect_rc 0 "$BIN/in-toto-sign" --verify -f "$multi" \
    -k "$KEYS/test-only-ed25519-encrypted.pub" "$KEYS/test-only-rsa.pub"
  expect_rc 0 "$BIN/in-toto-verify" --layout "$multi" --link-dir "$WORK/empty-link-dir" \
    --verification-keys "$KEYS/test-only-ed25519-encrypted.pub" "$KEYS/test-only-rsa.pub"
  ok "$env layout signed by two keys (one encrypted) verified"
done

echo "selfcheck passed"
