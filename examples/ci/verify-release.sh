#!/bin/sh
# Verifies the release before it is published: checks the whole chain of links against the
# owner's signed layout, and runs the layout's inspections on a copy of what would ship.
#
#   examples/ci/verify-release.sh [-l LAYOUT] [-k OWNER.pub] [-d LINKS] [-a DIST] [-r REPORT]
#
#   -l LAYOUT  the signed layout (default: root.layout)
#   -k PUB     the owner's public key file; without it, TOLLGATE_OWNER_PUB must hold the key
#              as PEM text (a CI variable: it is public, but not a file of the repository)
#   -d LINKS   the folder holding every step's links (default: $TOLLGATE_LINKS, else links)
#   -a DIST    the folder holding app.tar.gz and app.tar.gz.sha256 (default: dist)
#   -r REPORT  where to write the JSON report (default: verify-report.json)
#   -D SHA256  pin the layout file's SHA-256 (`tollgate verify --layout-digest`), so that an
#              older layout the owner also signed cannot be replayed
#
# The two release files are copied into a fresh, empty work folder (the inspections unpack the
# tarball in a scratch copy of it and run `sha256sum --check`), so nothing else of the job's
# checkout can sway them. Verification runs twice, each time in a fresh folder: once for the
# JSON report kept by the pipeline, once for the sentence a person reads in the job log.
#
# Exit code: tollgate verify's: 0 verified, 1 not verified, 2 bad input or usage, 3 internal.
# Environment: TOLLGATE, the tollgate program (default: tollgate, found on the PATH).

set -eu

program=$(basename "$0")

usage() {
    echo "usage: $program [-l LAYOUT] [-k OWNER.pub] [-d LINKS] [-a DIST] [-r REPORT] [-D SHA256]" >&2
}

fail() {
    echo "$program: $*" >&2
    exit 2
}

layout=root.layout
owner_pub=
links=${TOLLGATE_LINKS:-links}
dist=dist
report=verify-report.json
digest=
while getopts l:k:d:a:r:D: option; do
    case "$option" in
        l) layout=$OPTARG ;;
        k) owner_pub=$OPTARG ;;
        d) links=$OPTARG ;;
        a) dist=$OPTARG ;;
        r) report=$OPTARG ;;
        D) digest=$OPTARG ;;
        *)
            usage
            exit 2
            ;;
    esac
done
shift $((OPTIND - 1))
if [ "$#" -ne 0 ]; then
    usage
    fail "unexpected argument '$1'"
fi

TOLLGATE=${TOLLGATE:-tollgate}
if ! command -v "$TOLLGATE" >/dev/null 2>&1; then
    fail "cannot find the tollgate program '$TOLLGATE' (install it, or set TOLLGATE to its path)"
fi
[ -f "$layout" ] || fail "no layout at '$layout' (build it with: tollgate layout build SOURCE.toml --key OWNER.pem -o $layout)"
[ -d "$links" ] || fail "no link folder at '$links'"
for file in app.tar.gz app.tar.gz.sha256; do
    [ -f "$dist/$file" ] || fail "no $dist/$file: nothing to verify"
done

# Everything temporary lives in one folder, removed on exit.
scratch=
trap '[ -z "$scratch" ] || rm -rf "$scratch"' EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
scratch=$(mktemp -d "${TMPDIR:-/tmp}/tollgate-verify.XXXXXXXX")

if [ -z "$owner_pub" ]; then
    if [ -z "${TOLLGATE_OWNER_PUB:-}" ]; then
        fail "no owner key: pass -k OWNER.pub, or set TOLLGATE_OWNER_PUB to the owner's public key (PEM text)"
    fi
    owner_pub=$scratch/owner.pub
    # As step.sh does with keys: no CRs, exactly one final newline.
    pem=$(printf '%s\n' "$TOLLGATE_OWNER_PUB" | tr -d '\r')
    printf '%s\n' "$pem" >"$owner_pub"
fi
[ -f "$owner_pub" ] || fail "no owner public key at '$owner_pub'"

# A fresh work folder holding only dist/app.tar.gz and dist/app.tar.gz.sha256.
workdir() {
    mkdir -p "$scratch/$1/dist"
    cp "$dist/app.tar.gz" "$dist/app.tar.gz.sha256" "$scratch/$1/dist/"
    echo "$scratch/$1"
}

# `tollgate verify` with the options both runs share, then the run's own.
verify() {
    if [ -n "$digest" ]; then
        set -- --layout-digest "$digest" "$@"
    fi
    "$TOLLGATE" verify --layout "$layout" --layout-key "$owner_pub" --link-dir "$links" "$@"
}

json_work=$(workdir json)
text_work=$(workdir text)

# The report, for the pipeline (and the gate: its exit code is the verdict).
status=0
verify --workdir "$json_work" --format json >"$report" || status=$?

# The same verification in words, for the log.
text_status=0
verify --workdir "$text_work" || text_status=$?

if [ "$text_status" -ne "$status" ]; then
    echo "$program: the two verifications disagree (exit $status, then $text_status): not publishing" >&2
    if [ "$status" -eq 0 ]; then
        status=3
    fi
fi
if [ "$status" -eq 0 ]; then
    echo "$program: release verified; report in $report"
else
    echo "$program: release NOT verified (exit $status); report in $report" >&2
fi
exit "$status"
