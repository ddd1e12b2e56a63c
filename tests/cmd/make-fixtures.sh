#!/bin/sh
# Rebuilds the signed input files of the golden transcripts (tests/cmd/*.in/) from the test-only
# keys of keys-example/, with the tollgate binary given as $1 (default: target/debug/tollgate).
# The transcripts themselves (NAME.stdout, NAME.stderr) are refreshed with
# `TRYCMD=overwrite cargo test --test tests transcripts`; review the diff before committing.
set -eu
repo=$(cd "$(dirname "$0")/../.." && pwd)
tollgate=$(cd "$repo" && realpath "${1:-target/debug/tollgate}")
cmd="$repo/tests/cmd"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

mkdir keys
for who in owner alice bob carol; do
    cp "$repo/keys-example/test-only-$who.pem" "keys/$who.pem"
    chmod 600 "keys/$who.pem"
    cp "$repo/keys-example/test-only-$who.pub" "keys/$who.pub"
done
cat > layout.toml <<'TOML'
readme = "Golden-transcript fixture: alice builds, carol packages."
expires = "2099-01-01T00:00:00Z"

[[step]]
name = "build"
functionaries = ["keys/alice.pub"]
threshold = 1
expected_materials = ["ALLOW src/*", "DISALLOW *"]
expected_products = ["CREATE dist/*", "DISALLOW *"]

[[step]]
name = "package"
functionaries = ["keys/carol.pub"]
threshold = 1
expected_materials = ["MATCH dist/* WITH PRODUCTS FROM build", "DISALLOW *"]
expected_products = ["CREATE app.tar", "DISALLOW *"]
TOML
"$tollgate" layout build layout.toml --key keys/owner.pem -o root.layout 2>/dev/null

mkdir src dist good wrong-key rule nomatch
echo 'int main(void) { return 0; }' > src/main.c
echo 'the README' > README
echo 'binary' > dist/app
echo 'tarball' > app.tar
rec() { "$tollgate" run -q -x "$@"; }
rec -n build -k keys/alice.pem -m src -p dist -d good
rec -n package -k keys/carol.pem -m dist -p app.tar -d good
# The build link, but signed by bob and named for alice's key.
rec -n build -k keys/bob.pem -m src -p dist -d wrong-key
alice_link=$(cd good && ls build.*.link)
mv wrong-key/build.*.link "wrong-key/$alice_link"
# A build that read a file its rules do not allow.
rec -n build -k keys/alice.pem -m src README -p dist -d rule
# A package step whose input is not what the build made.
echo 'tampered' > dist/app
rec -n package -k keys/carol.pem -m dist -p app.tar -d nomatch
echo 'binary' > dist/app

layout_case() { # NAME LINKFOLDER...
    name=$1; shift
    rm -rf "$cmd/$name.in"; mkdir -p "$cmd/$name.in/links"
    cp root.layout "$cmd/$name.in/"
    for from in "$@"; do cp "$from" "$cmd/$name.in/links/"; done
}
layout_case verify_passes good/*.link
layout_case verify_layout_expired good/*.link
layout_case verify_bad_layout_signature good/*.link
sed 's/Golden-transcript fixture/Tampered fixture/' root.layout > "$cmd/verify_bad_layout_signature.in/root.layout"
layout_case verify_missing_link good/package.*.link
layout_case verify_link_wrong_key wrong-key/*.link good/package.*.link
layout_case verify_rule_fails rule/*.link good/package.*.link
layout_case verify_product_mismatch good/build.*.link nomatch/*.link
layout_case verify_missing_link_dir
rmdir "$cmd/verify_missing_link_dir.in/links"
layout_case verify_bad_param good/*.link
layout_case verify_malformed_link good/package.*.link
# A build link whose signature is a number, not a hex string.
python3 - "good/$alice_link" "$cmd/verify_malformed_link.in/links/$alice_link" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
doc["signatures"][0]["sig"] = 5
open(sys.argv[2], "w").write(json.dumps(doc, indent=1, sort_keys=True) + "\n")
PY
# A layout whose threshold is a word: `layout check` names the file and the field.
rm -rf "$cmd/layout_check_malformed.in"; mkdir -p "$cmd/layout_check_malformed.in"
python3 - root.layout "$cmd/layout_check_malformed.in/root.layout" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
doc["signed"]["steps"][0]["threshold"] = "one"
open(sys.argv[2], "w").write(json.dumps(doc, indent=1, sort_keys=True) + "\n")
PY
layout_case verify_missing_layout_key good/*.link

rm -rf "$cmd/match_products_mismatch.in"; mkdir -p "$cmd/match_products_mismatch.in/dist"
cp "good/$alice_link" "$cmd/match_products_mismatch.in/"
echo 'tampered' > "$cmd/match_products_mismatch.in/dist/app"

for name in run_key_missing run_public_key_as_key run_key_readable_by_others \
    run_without_dashes record_stop_without_start; do
    rm -rf "$cmd/$name.in"; mkdir -p "$cmd/$name.in"; touch "$cmd/$name.in/.keep"
done
rm -rf "$cmd/run_wrong_password.in"; mkdir -p "$cmd/run_wrong_password.in"
echo 'not the password' > "$cmd/run_wrong_password.in/wrong-password.txt"
rm -rf "$cmd/run_missing_material.in"; mkdir -p "$cmd/run_missing_material.in"
touch "$cmd/run_missing_material.in/.keep"
rm -rf "$cmd/run_lstrip_collision.in"; mkdir -p "$cmd/run_lstrip_collision.in/a" "$cmd/run_lstrip_collision.in/b"
echo 'one' > "$cmd/run_lstrip_collision.in/a/x"
echo 'two' > "$cmd/run_lstrip_collision.in/b/x"
rm -rf "$cmd/layout_show_unverified.in"; mkdir -p "$cmd/layout_show_unverified.in"
cp root.layout "$cmd/layout_show_unverified.in/"
for name in pull_insecure_remote run_no_command; do
    rm -rf "$cmd/$name.in"; mkdir -p "$cmd/$name.in"; touch "$cmd/$name.in/.keep"
done
rm -rf "$cmd/run_command_among_products.in"; mkdir -p "$cmd/run_command_among_products.in"
echo 'tarball' > "$cmd/run_command_among_products.in/app.tar"
# An unfinished link named for bob's key but signed by alice.
rm -rf "$cmd/record_stop_not_this_key.in"; mkdir -p "$cmd/record_stop_not_this_key.in" started
(cd started && "$tollgate" record start -q -n build -k ../keys/alice.pem)
cp started/.build.*.link-unfinished "$cmd/record_stop_not_this_key.in/.build.61dbe027.link-unfinished"
for name in run_bad_dir_uri run_bad_exclude; do
    rm -rf "$cmd/$name.in"; mkdir -p "$cmd/$name.in"; touch "$cmd/$name.in/.keep"
done
rm -rf "$cmd/run_corrupt_oci.in"; mkdir -p "$cmd/run_corrupt_oci.in"
echo 'not a tar archive' > "$cmd/run_corrupt_oci.in/image.tar"
rm -rf "$cmd/record_stop_already_finished.in"; mkdir -p "$cmd/record_stop_already_finished.in"
cp "good/$alice_link" "$cmd/record_stop_already_finished.in/"
rm -rf "$cmd/record_stop_two_unfinished.in"; mkdir -p "$cmd/record_stop_two_unfinished.in/out"
cp started/.build.*.link-unfinished "$cmd/record_stop_two_unfinished.in/"
cp started/.build.*.link-unfinished "$cmd/record_stop_two_unfinished.in/out/"
rm -rf "$cmd/record_stop_nowhere.in"; mkdir -p "$cmd/record_stop_nowhere.in/out"
touch "$cmd/record_stop_nowhere.in/out/.keep"
# A VSA of the good chain, the owner's key standing in for the verifier's, for vsa check's
# refusals (its time changes on each rebuild; the transcripts do not show it).
rm -rf "$cmd/vsa_check_wrong_resource.in"; mkdir -p "$cmd/vsa_check_wrong_resource.in"
"$tollgate" verify -q --layout root.layout --layout-key keys/owner.pub --link-dir good \
    --vsa "$cmd/vsa_check_wrong_resource.in/app.vsa.json" --vsa-key keys/owner.pem \
    --verifier-id https://ci.example.com/tollgate --resource-uri https://example.com/app-1.0.tar.gz
