"""Reads a DSSE envelope holding an in-toto Statement with the Python in-toto-attestation
package (the framework's own bindings) and checks it against the specs' field rules:
the Statement, each subject's ResourceDescriptor, and the predicate parsed into its
schema (link v0.3, SLSA provenance v1 or SLSA VSA v1) with unknown fields refused.

With --any-predicate, a predicate of any type is accepted and checked only as a JSON
object (the Statement and its subjects are still checked in full): for attestations that wrap
a tool's output (an SBOM, a scan report) whose schema the package does not know.

Usage: attestation.py ENVELOPE.json [--any-predicate]
Prints "ok PREDICATE_TYPE SUBJECTS"; exits 1 otherwise.
"""

import base64
import json
import sys

from google.protobuf import json_format
from in_toto_attestation.predicates.link.v0 import link_pb2
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
from in_toto_attestation.predicates.vsa.v1 import vsa_pb2
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.statement import Statement

PREDICATES = {
    "https://in-toto.io/attestation/link/v0.3": link_pb2.Link,
    "https://slsa.dev/provenance/v1": provenance_pb2.Provenance,
    "https://slsa.dev/verification_summary/v1": vsa_pb2.VerificationSummary,
}
VSA = "https://slsa.dev/verification_summary/v1"


def check_vsa(predicate):
    """The VSA v1 spec's required fields, beyond what the schema's types say."""
    if not predicate.verifier.id:
        raise ValueError("verifier.id is required")
    if not predicate.HasField("time_verified"):
        raise ValueError("timeVerified is required")
    if not predicate.resource_uri:
        raise ValueError("resourceUri is required")
    if not predicate.policy.digest:
        raise ValueError("policy.digest is required")
    if predicate.verification_result not in ("PASSED", "FAILED"):
        raise ValueError("verificationResult is %r" % predicate.verification_result)
    if any(not a.uri or not a.digest for a in predicate.input_attestations):
        raise ValueError("each inputAttestation needs a uri and a digest")


def main(path, any_predicate=False):
    with open(path, "rb") as f:
        envelope = json.load(f)
    if envelope.get("payloadType") != "application/vnd.in-toto+json":
        raise ValueError("payloadType is %r" % envelope.get("payloadType"))
    payload = base64.b64decode(envelope["payload"], validate=True)
    statement_pb = json_format.Parse(payload, statement_pb2.Statement())
    Statement.copy_from_pb(statement_pb).validate()
    document = json.loads(payload)
    predicate_type = document["predicateType"]
    schema = PREDICATES.get(predicate_type)
    if any_predicate:
        if not isinstance(document.get("predicate"), dict):
            raise ValueError("the predicate is not a JSON object")
        check_subjects(statement_pb)
        print("ok", predicate_type, len(statement_pb.subject))
        return
    if schema is None:
        raise ValueError("unknown predicate type %r" % predicate_type)
    fields = dict(document["predicate"])
    if predicate_type == VSA:
        # The spec's verifier.version (component name -> version) is not in the package's
        # protobuf (its Verifier holds only id): check it here, then parse the rest strictly.
        verifier = dict(fields.get("verifier") or {})
        version = verifier.pop("version", {})
        if not isinstance(version, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in version.items()
        ):
            raise ValueError("verifier.version must map component names to versions")
        fields["verifier"] = verifier
        # The spec's verifiedLevels is a list of strings; the package's protobuf (0.9.3)
        # declares a single string, and would refuse every list: check it here.
        levels = fields.pop("verifiedLevels", None)
        if not isinstance(levels, list) or not levels or not all(
            isinstance(level, str) and level for level in levels
        ):
            raise ValueError("verifiedLevels must be a non-empty list of strings")
    predicate = json_format.ParseDict(fields, schema())
    if predicate_type == VSA:
        check_vsa(predicate)
    elif predicate_type.startswith("https://slsa.dev/"):
        if not predicate.build_definition.build_type:
            raise ValueError("buildDefinition.buildType is required")
        if not predicate.run_details.builder.id:
            raise ValueError("runDetails.builder.id is required")
        if not predicate.build_definition.external_parameters:
            raise ValueError("buildDefinition.externalParameters is required")
    else:
        if not predicate.name:
            raise ValueError("predicate.name is required")
        names = [m.name for m in predicate.materials]
        if len(names) != len(set(names)) or any(not m.digest for m in predicate.materials):
            raise ValueError("materials need unique names and a digest each")
    check_subjects(statement_pb)
    print("ok", predicate_type, len(statement_pb.subject))


def check_subjects(statement_pb):
    subjects = [s.name for s in statement_pb.subject]
    if len(subjects) != len(set(subjects)):
        raise ValueError("subject names must be unique")


if __name__ == "__main__":
    try:
        args = [a for a in sys.argv[1:] if a != "--any-predicate"]
        main(args[0], any_predicate=len(args) < len(sys.argv) - 1)
    except Exception as error:  # the message is the test's evidence
        print("invalid:", error)
        sys.exit(1)
