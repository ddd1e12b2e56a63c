#!/bin/sh
# Makes the TEST-ONLY key files of this folder, as migrating users hold them: private keys
# encrypted with legacy password-based schemes, and an ECDSA P-521 key, all written by
# OpenSSL (3.x needs its legacy provider to write the PBES1 and PKCS#12 schemes; OpenSSL 1.0
# wrote pbeWithMD5AndDES-CBC by default for `openssl pkcs8 -topk8`).
# The password of every encrypted file is in password.txt. Never use these keys for anything.
#
#   md5-des-ed25519.pem, md5-des-p256.pem, md5-des-rsa.pem: PBES1 pbeWithMD5AndDES-CBC
#       (Tollgate reads them and warns); the .pub next to each is its public key.
#   sha1-3des-ed25519.pem: PKCS#12 pbeWithSHAAnd3-KeyTripleDES-CBC (refused by name).
#   pbes2-des3-sha1-ed25519.pem: PBES2, 3DES, PBKDF2-HMAC-SHA1 (OpenSSL 1.0's `-v2 des3`).
#   pbes2-des-sha1-ed25519.pem: PBES2, single DES, PBKDF2-HMAC-SHA1 (refused by name, as the
#       reference refuses it).
#   p521.pem (PKCS#8), p521-sec1.pem (SEC1 "EC PRIVATE KEY"), p521.pub: ECDSA on P-521.
set -eu
cd "$(dirname "$0")"
legacy="-provider legacy -provider default"
password=$(cat password.txt)
key() {
    name=$1
    shift
    openssl genpkey "$@" -out "$name.plain"
    openssl pkey -in "$name.plain" -pubout -out "$name.pub"
}
key md5-des-ed25519 -algorithm ed25519
key md5-des-p256 -algorithm EC -pkeyopt ec_paramgen_curve:P-256
key md5-des-rsa -algorithm RSA -pkeyopt rsa_keygen_bits:2048
for name in md5-des-ed25519 md5-des-p256 md5-des-rsa; do
    # shellcheck disable=SC2086
    openssl pkcs8 -topk8 -v1 PBE-MD5-DES $legacy -in "$name.plain" -out "$name.pem" \
        -passout "pass:$password"
done
key sha1-3des-ed25519 -algorithm ed25519
# shellcheck disable=SC2086
openssl pkcs8 -topk8 -v1 PBE-SHA1-3DES $legacy -in sha1-3des-ed25519.plain \
    -out sha1-3des-ed25519.pem -passout "pass:$password"
rm -f ./*.plain
key p521 -algorithm EC -pkeyopt ec_paramgen_curve:P-521 -pkeyopt ec_param_enc:named_curve
mv p521.plain p521.pem
openssl ec -in p521.pem -out p521-sec1.pem
key pbes2-des3-sha1-ed25519 -algorithm ed25519
openssl pkcs8 -topk8 -v2 des3 -v2prf hmacWithSHA1 -in pbes2-des3-sha1-ed25519.plain \
    -out pbes2-des3-sha1-ed25519.pem -passout "pass:$password"
key pbes2-des-sha1-ed25519 -algorithm ed25519
# shellcheck disable=SC2086
openssl pkcs8 -topk8 -v2 des -v2prf hmacWithSHA1 $legacy -in pbes2-des-sha1-ed25519.plain \
    -out pbes2-des-sha1-ed25519.pem -passout "pass:$password"
rm -f ./*.plain
