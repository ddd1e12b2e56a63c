#!/bin/sh
# Regenerates the TEST-ONLY keys of the example release pipeline (the owner and the
# functionaries of layouts/release.toml) and rebuilds layouts/release.layout from it.
# The older fixtures (test-only-ed25519, -bob-ed25519, -ecdsa-*, -rsa, -encrypted) are
# left alone: tests name their keyids.
#
# These keys are committed, hence public. Never use them for anything real.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
gen() {
    name=$1
    shift
    rm -f "test-only-$name.pem" "test-only-$name.pub"
    openssl genpkey "$@" -out "test-only-$name.pem"
    openssl pkey -in "test-only-$name.pem" -pubout -out "test-only-$name.pub"
}
gen owner -algorithm ed25519
gen alice -algorithm ed25519
gen bob -algorithm EC -pkeyopt ec_paramgen_curve:P-256
gen carol -algorithm ed25519
gen dan -algorithm RSA -pkeyopt rsa_keygen_bits:3072
gen erin -algorithm EC -pkeyopt ec_paramgen_curve:P-384
gen frank -algorithm ed25519
cd ..
cargo run --quiet --release -- layout build layouts/release.toml \
    --key keys-example/test-only-owner.pem --insecure-key-permissions \
    -o layouts/release.layout --overwrite
cargo run --quiet --release -- layout build layouts/container.toml \
    --key keys-example/test-only-owner.pem --insecure-key-permissions \
    -o layouts/container.layout --overwrite
