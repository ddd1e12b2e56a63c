"""Reference-side helper for Tollgate's interoperability tests.

Tollgate is a Rust implementation of in-toto. To check that it interoperates
with the Python reference implementation (PyPI ``in-toto==3.1.0``, pinned in
``requirements.txt`` next to this file), the Rust tests run this script with
the interpreter of a venv that has those requirements installed:

    target/reference-venv/bin/python tests/reference/ref.py SUBCOMMAND ...

Every subcommand goes through the reference's own API, the same functions its
command line tools (``in-toto-sign``, ``in-toto-run``, ``in-toto-verify``) use,
so the output is what the reference itself would produce:

    keyid PUBPEM          print the keyid of an SPKI PEM public key
    keyobj PUBPEM         print the key as a layout's ``keys`` map holds it
    make-layout           write an unsigned bare layout (--steps: with steps)
    sign-layout           sign a bare layout: classic Metablock or DSSE
    sign-link             sign a bare link: classic Metablock or DSSE

Subcommands print nothing on success unless stated, and exit non-zero with a
message on stderr on failure.
"""

import argparse
import json
import sys

from in_toto.models._signer import (
    load_crypto_signer_from_pkcs8_file,
    load_public_key_from_file,
)
from in_toto.models.layout import Inspection, Layout, Step
from in_toto.models.link import Link
from in_toto.models.metadata import Envelope, Metablock


def _read_password(path):
    """Read a key password from a file, minus one trailing newline."""
    if path is None:
        return None
    with open(path, "rb") as f:
        data = f.read()
    if data.endswith(b"\r\n"):
        data = data[:-2]
    elif data.endswith(b"\n"):
        data = data[:-1]
    return data


def _load_bare(path, expected_type):
    """Read a bare (unsigned) ``{"_type": ...}`` JSON object from path."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    if data.get("_type") != expected_type:
        raise ValueError(
            f"{path}: expected a bare object with _type {expected_type!r}, "
            f"got _type {data.get('_type')!r}"
        )
    return data


def _sign_and_dump(signable, key_paths, password, out_path, use_dsse):
    """Sign signable with every key, as in-toto-sign / runlib do, and dump it."""
    if use_dsse:
        metadata = Envelope.from_signable(signable)
    else:
        metadata = Metablock(signed=signable)
    for path in key_paths:
        # The password only goes to encrypted keys (pyca/cryptography refuses a
        # password for an unencrypted key), so keys of both kinds can be mixed.
        with open(path, "rb") as f:
            encrypted = b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in f.read()
        signer = load_crypto_signer_from_pkcs8_file(
            path, password if encrypted else None
        )
        metadata.create_signature(signer)
    metadata.dump(out_path)


def cmd_keyid(args):
    # in-toto-verify --verification-keys, in-toto-sign -k and
    # Layout.add_functionary_key_from_path all load keys with this function.
    print(load_public_key_from_file(args.pubpem)["keyid"])


def cmd_keyobj(args):
    # Exactly the dict Layout.add_functionary_key_from_path stores in `keys`.
    print(json.dumps(load_public_key_from_file(args.pubpem), sort_keys=True))


def cmd_make_layout(args):
    layout = Layout(expires=args.expires, readme=args.readme)
    keyids = [layout.add_functionary_key_from_path(path)["keyid"] for path in args.key]
    if args.steps:
        _add_demo_steps(layout, keyids)
    # Signable.__repr__ is the reference's own serialisation of a bare object.
    with open(args.out, "wb") as f:
        f.write(f"{layout}".encode("utf-8"))


def _add_demo_steps(layout, keyids):
    """Two steps and an inspection, built with the reference's layout API."""
    if len(keyids) < 2:
        raise ValueError("--steps needs two --key functionaries")
    clone = Step(name="clone", pubkeys=[keyids[0]], threshold=1)
    clone.set_expected_command_from_string("git clone https://example.com/project.git")
    clone.add_product_rule_from_string("CREATE project/*")
    clone.add_product_rule_from_string("DISALLOW *")
    package = Step(name="package", pubkeys=keyids[:2], threshold=2)
    package.set_expected_command_from_string("tar czf project.tar.gz project")
    package.add_material_rule_from_string("MATCH project/* WITH PRODUCTS FROM clone")
    package.add_material_rule_from_string("DISALLOW *")
    package.add_product_rule_from_string("CREATE project.tar.gz")
    package.add_product_rule_from_string("DISALLOW *")
    untar = Inspection(name="untar")
    untar.set_run_from_string("tar xzf project.tar.gz")
    untar.add_material_rule_from_string(
        "MATCH project.tar.gz WITH PRODUCTS FROM package"
    )
    untar.add_product_rule_from_string(
        "MATCH * IN project WITH PRODUCTS IN project FROM clone"
    )
    layout.steps = [clone, package]
    layout.inspect = [untar]


def cmd_sign_layout(args):
    layout = Layout.read(_load_bare(args.infile, "layout"))
    _sign_and_dump(
        layout, args.key, _read_password(args.password_file), args.out, args.dsse
    )


def cmd_sign_link(args):
    link = Link.read(_load_bare(args.infile, "link"))
    _sign_and_dump(
        link, [args.key], _read_password(args.password_file), args.out, args.dsse
    )


def build_parser():
    parser = argparse.ArgumentParser(
        prog="ref.py",
        description="Drive the in-toto reference implementation for Tollgate's "
        "interoperability tests.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")

    p = sub.add_parser("keyid", help="print the reference keyid of an SPKI PEM key")
    p.add_argument("pubpem", metavar="PUBPEM")
    p.set_defaults(func=cmd_keyid)

    p = sub.add_parser(
        "keyobj", help="print the key as the reference stores it in layout keys"
    )
    p.add_argument("pubpem", metavar="PUBPEM")
    p.set_defaults(func=cmd_keyobj)

    p = sub.add_parser("make-layout", help="write an unsigned bare layout")
    p.add_argument("--out", required=True, metavar="FILE")
    p.add_argument("--expires", required=True, metavar="ISO",
                   help="YYYY-MM-DDTHH:MM:SSZ")
    p.add_argument("--readme", required=True, metavar="TEXT")
    p.add_argument("--key", action="append", default=[], metavar="PUBPEM",
                   help="functionary public key (repeatable)")
    p.add_argument("--steps", action="store_true",
                   help="add two steps and an inspection (needs two --key)")
    p.set_defaults(func=cmd_make_layout)

    for name, what, multi in (("sign-layout", "layout", True),
                              ("sign-link", "link", False)):
        p = sub.add_parser(name, help=f"sign a bare {what} JSON object")
        p.add_argument("--in", dest="infile", required=True, metavar="FILE",
                       help=f'bare unsigned {what}: {{"_type": "{what}", ...}}')
        if multi:
            p.add_argument("--key", action="append", required=True,
                           metavar="PRIVPEM", help="PKCS#8 PEM key (repeatable)")
        else:
            p.add_argument("--key", required=True, metavar="PRIVPEM",
                           help="PKCS#8 PEM key")
        p.add_argument("--password-file", metavar="FILE",
                       help="password for encrypted keys; unencrypted keys "
                       "ignore it (one trailing newline is stripped)")
        p.add_argument("--out", required=True, metavar="FILE")
        p.add_argument("--dsse", action="store_true",
                       help="write a DSSE envelope instead of a Metablock")
        p.set_defaults(func=cmd_sign_layout if multi else cmd_sign_link)

    return parser


def main():
    args = build_parser().parse_args()
    try:
        args.func(args)
    except Exception as e:  # noqa: BLE001 - report any failure uniformly
        print(f"ref.py {args.command}: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
