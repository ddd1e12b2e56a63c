#!/bin/sh
# Records one step of the release pipeline (layouts/release.toml) with Tollgate, as the CI job
# that performs the step. Each job calls it with the step's name, from the project's root:
#
#   TOLLGATE_KEY="$PEM_TEXT" examples/ci/step.sh build
#
# Steps (what each records, as layouts/release.toml expects):
#   review        materials src/, no command (run once per reviewer, each with their own key)
#   source        products src/, no command: run right after the checkout
#   source-start  the same as `source`, in two halves: `source-start` before the checkout...
#   source-stop   ...and `source-stop` after it (the unfinished link waits in the link folder)
#   build         runs `tar -czf dist/app.tar.gz src`: materials src/, products dist/
#   scan          runs `tar -tzf dist/app.tar.gz`: materials dist/app.tar.gz, output recorded;
#                 then attests the tarball's CycloneDX SBOM, which the job's scanner wrote
#                 before (`syft scan file:dist/app.tar.gz -o cyclonedx-json=sbom.cdx.json`)
#   sign          writes dist/app.tar.gz.sha256 (`sha256sum` format) between `record start`
#                 (materials dist/app.tar.gz) and `record stop` (products dist/)
#
# Environment:
#   TOLLGATE_KEY           the functionary's private key, as PEM text (a CI secret). Required.
#   TOLLGATE_KEY_PASSWORD  the key's password, if the key is encrypted (a CI secret too).
#   TOLLGATE_LINKS         the folder the links go to (default: links).
#   TOLLGATE_SBOM          for scan: the SBOM file to attest (default: sbom.cdx.json).
#   TOLLGATE               the tollgate program (default: tollgate, found on the PATH).
#
# The key is written to a private temporary file (mode 0600, under $TMPDIR), removed when the
# script ends, however it ends, and taken out of the environment before any command runs. It is
# never printed. Exit codes: tollgate's or the step command's; 2 for a usage error.

set -eu

program=$(basename "$0")

usage() {
    echo "usage: TOLLGATE_KEY=\"\$PEM\" $program review|source|source-start|source-stop|build|scan|sign" >&2
}

fail() {
    echo "$program: $*" >&2
    exit 2
}

if [ "$#" -ne 1 ]; then
    usage
    exit 2
fi
step=$1
case "$step" in
    review | source | source-start | source-stop | build | scan | sign) ;;
    *)
        usage
        fail "unknown step '$step': the release layout's steps are review, source, build, scan and sign"
        ;;
esac

if [ -z "${TOLLGATE_KEY:-}" ]; then
    fail "TOLLGATE_KEY is not set: it must hold the private key (PEM text) of the functionary performing step '$step'"
fi

TOLLGATE=${TOLLGATE:-tollgate}
links=${TOLLGATE_LINKS:-links}
if ! command -v "$TOLLGATE" >/dev/null 2>&1; then
    fail "cannot find the tollgate program '$TOLLGATE' (install it, or set TOLLGATE to its path)"
fi
sbom=${TOLLGATE_SBOM:-sbom.cdx.json}
if [ "$step" = scan ] && [ ! -f "$sbom" ]; then
    fail "no SBOM at '$sbom': run the scanner first (syft scan file:dist/app.tar.gz -o cyclonedx-json=$sbom), or set TOLLGATE_SBOM to the file it wrote"
fi

# The key file: created 0600 with umask 077 (mktemp's own mode, and the umask, in case), removed
# on exit. The signal traps leave through the EXIT trap, so an interrupted job leaves no key.
keyfile=
trap '[ -z "$keyfile" ] || rm -f "$keyfile"' EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
saved_umask=$(umask)
umask 077
keyfile=$(mktemp "${TMPDIR:-/tmp}/tollgate-key.XXXXXXXX")
# printf is a shell builtin: the key never appears on a command line (visible in `ps`); it goes
# through a pipe only. Pasted secrets often end in a blank line or carry CRs, which a PEM
# reader refuses: drop the CRs, and the trailing newlines ($(...) removes them), then end the
# file with exactly one newline.
key=$(printf '%s\n' "$TOLLGATE_KEY" | tr -d '\r')
printf '%s\n' "$key" >"$keyfile"
key=
# Links, the tarball and the checksum get the job's usual permissions.
umask "$saved_umask"
# The step's command (tar, ...) needs no key: keep it out of its environment.
unset TOLLGATE_KEY

# `tollgate run` with the key and the link folder.
run_step() {
    if [ -n "${TOLLGATE_KEY_PASSWORD:-}" ]; then
        set -- --password-env TOLLGATE_KEY_PASSWORD "$@"
    fi
    "$TOLLGATE" run --key "$keyfile" --metadata-directory "$links" "$@"
}

# `tollgate attest` with the key, into the link folder.
attest() {
    if [ -n "${TOLLGATE_KEY_PASSWORD:-}" ]; then
        set -- --password-env TOLLGATE_KEY_PASSWORD "$@"
    fi
    "$TOLLGATE" attest --key "$keyfile" --metadata-directory "$links" "$@"
}

# `tollgate record start|stop` with the key and the link folder.
record() {
    action=$1
    shift
    if [ -n "${TOLLGATE_KEY_PASSWORD:-}" ]; then
        set -- --password-env TOLLGATE_KEY_PASSWORD "$@"
    fi
    "$TOLLGATE" record "$action" --key "$keyfile" --metadata-directory "$links" "$@"
}

case "$step" in
    review)
        run_step --step review --materials src --no-command
        ;;
    source)
        run_step --step source --products src --no-command
        ;;
    source-start)
        record start --step source
        ;;
    source-stop)
        record stop --step source --products src
        ;;
    build)
        mkdir -p dist
        run_step --step build --materials src --products dist --record-streams \
            -- tar -czf dist/app.tar.gz src
        ;;
    scan)
        run_step --step scan --materials dist/app.tar.gz --record-streams \
            -- tar -tzf dist/app.tar.gz
        # The layout's policy over the SBOM decides at verification; here it is only signed.
        attest --step scan --predicate-type cyclonedx --predicate "$sbom" \
            --subject dist/app.tar.gz
        ;;
    sign)
        record start --step sign --materials dist/app.tar.gz
        sha256sum dist/app.tar.gz >dist/app.tar.gz.sha256
        record stop --step sign --products dist
        ;;
esac
