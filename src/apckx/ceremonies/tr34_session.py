"""The RSA parties the TR-34 and RSA-wrap ceremonies share (apc-tr34.md 3.1-3.5).

* apckx's *RSA sender CA* and a separate *signing leaf* (the TR-34 KDH), and on demand a
  *wrapping leaf* (apckx as KRD / RSA-wrap receiver), kept under the certs dir: private keys
  0600 (opened once, no symlinks, refused if others can read them), reused across runs as the
  ECDH sender CA is. Their file names differ from the ECDH ones, so one certs dir holds both.
* the CA imported into APC as an S0 ``RootCertificatePublicKey``, reused when the root alias
  names an enabled RSA S0 public key whose ``apckx:ca-sha256`` tag is our CA's fingerprint
  (as :class:`apckx.ceremonies.ecdh_session.EcdhSession` does for the ECDH root);
* APC's import or export parameters (GetParametersForImport / GetParametersForExport): the
  wrapping or signing certificate, verified up APC's chain to a self-signed root (optionally
  pinned by fingerprint) before anything is wrapped for it or accepted from it.

Every resource is journaled as APC confirms it. No secret leaves this module except the
private keys handed to the caller in :class:`RsaCredentials`.
"""

from __future__ import annotations

import hmac
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from apckx.ceremonies.ecdh_session import (
    CA_FINGERPRINT_TAG,
    ROLE_TAG,
    point_alias,
    root_certificate_material,
)
from apckx.ceremonies.journal import Journal, Resource
from apckx.errors import ApckxError, CertificateError, ConfigError, InputError
from apckx.service.apc import CEREMONY_TAG, ApcService, Key

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import rsa

TR34_ROOT_ALIAS = "alias/apckx-tr34-sender-root"
ROOT_ROLE = "tr34-root"
S0 = "TR31_S0_ASYMMETRIC_KEY_FOR_DIGITAL_SIGNATURE"
KEY_BLOCK_FORMAT = "X9_TR34_2012"

RSA_CA_KEY = "rsa_sender_ca_key.pem"
RSA_CA_CERT = "rsa_sender_ca_cert.pem"
RSA_SIGNING_KEY = "rsa_signing_key.pem"
RSA_SIGNING_CERT = "rsa_signing_cert.pem"
RSA_WRAPPING_KEY = "rsa_wrapping_key.pem"
RSA_WRAPPING_CERT = "rsa_wrapping_cert.pem"
# RSA-3072 throughout: it carries AES_128 and TDES (RSA_2048 carries TDES only).
RSA_CREDENTIAL_ALGORITHM = "RSA_3072"
_MAX_PEM = 64 * 1024


@dataclass(frozen=True)
class RsaParty:
    key: rsa.RSAPrivateKey = field(repr=False)
    cert: x509.Certificate


@dataclass(frozen=True)
class RsaCredentials:
    """apckx's RSA CA and the leaf it issued (signing or wrapping), with private keys."""

    ca: RsaParty
    leaf: RsaParty
    created: bool  # the CA was made now: it cannot be in APC yet


def _load_private(path: Path) -> rsa.RSAPrivateKey:
    from apckx._hardening import read_regular_file
    from apckx.crypto.certs import load_rsa_private_key_pem

    try:
        content = read_regular_file(path, limit=_MAX_PEM, what="private key", follow_symlinks=False)
    except InputError as exc:
        raise ConfigError(str(exc)) from None
    mode = stat.S_IMODE(content.mode)
    if mode & 0o077:
        raise ConfigError(
            f"private key {path} is readable by others (mode {mode:04o}): run chmod 600 {path}"
        )
    if hasattr(os, "geteuid") and content.uid not in (os.geteuid(), 0):
        raise ConfigError(f"private key {path} belongs to another user: use your own copy")
    try:
        return load_rsa_private_key_pem(content.data)
    except InputError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _save_private(path: Path, key: rsa.RSAPrivateKey) -> None:
    from apckx.crypto.certs import rsa_private_key_to_pem
    from apckx.keystore import PRIVATE_FILE_MODE, _write_atomically

    _write_atomically(path, rsa_private_key_to_pem(key), PRIVATE_FILE_MODE, overwrite=False)


def _load_pair(directory: Path, key_name: str, cert_name: str) -> RsaParty | None:
    """The key and certificate, or None when neither exists; ConfigError for half a pair."""
    from apckx.keystore import load_certificate

    key_path, cert_path = directory / key_name, directory / cert_name
    present = [os.path.lexists(key_path), os.path.lexists(cert_path)]
    if not any(present):
        return None
    if not all(present):
        missing = key_name if not present[0] else cert_name
        raise ConfigError(
            f"{directory} holds only half of an RSA credential (missing {missing}): restore it "
            "or remove the other file"
        )
    key, cert = _load_private(key_path), load_certificate(cert_path)
    if cert.public_key() != key.public_key():
        raise ConfigError(f"{key_path} does not match {cert_path}")
    return RsaParty(key, cert)


def load_or_create_rsa_credentials(certs_dir: Path, leaf: str = "signing") -> RsaCredentials:
    """The RSA sender CA (created on first use) and its ``leaf``: "signing" (the TR-34 KDH
    key) or "wrapping" (a KRD / RSA-wrap receiver key). Both are kept and reused; a leaf
    that no longer verifies under the CA (expired, another CA) is an error, not replaced."""
    from apckx.crypto.certs import (
        new_rsa_sender_ca,
        new_rsa_signing_leaf,
        new_rsa_wrapping_leaf,
        verify_rsa_chain,
    )
    from apckx.keystore import _ensure_directory, check_private_directory, save_certificate

    directory = Path(certs_dir)
    check_private_directory(directory, what="certs directory")
    names = {
        "signing": (RSA_SIGNING_KEY, RSA_SIGNING_CERT, new_rsa_signing_leaf),
        "wrapping": (RSA_WRAPPING_KEY, RSA_WRAPPING_CERT, new_rsa_wrapping_leaf),
    }
    key_name, cert_name, issue = names[leaf]
    ca = _load_pair(directory, RSA_CA_KEY, RSA_CA_CERT)
    created = ca is None
    if ca is None:
        if _load_pair(directory, key_name, cert_name) is not None:
            raise ConfigError(
                f"{directory} holds {key_name} but no {RSA_CA_KEY}: restore the CA or use an "
                "empty certs directory"
            )
        _ensure_directory(directory)
        ca = RsaParty(*new_rsa_sender_ca(RSA_CREDENTIAL_ALGORITHM))
        _save_private(directory / RSA_CA_KEY, ca.key)
        save_certificate(directory / RSA_CA_CERT, ca.cert, overwrite=False)
    party = _load_pair(directory, key_name, cert_name)
    if party is None:
        party = RsaParty(*issue(ca.key, ca.cert, RSA_CREDENTIAL_ALGORITHM))
        _save_private(directory / key_name, party.key)
        save_certificate(directory / cert_name, party.cert, overwrite=False)
    try:
        verify_rsa_chain(party.cert, ca.cert)
    except CertificateError as exc:
        raise ConfigError(
            f"the RSA {leaf} certificate in {directory} does not verify under its CA ({exc}): "
            f"remove {key_name} and {cert_name} to issue a new one"
        ) from None
    return RsaCredentials(ca, party, created)


def load_ca_certificates(path: Path) -> list[x509.Certificate]:
    """A PEM file of one or more certificates (a partner's CA, or its chain)."""
    from apckx._hardening import read_regular_file
    from apckx.crypto.certs import load_certificates_pem

    try:
        data = read_regular_file(path, limit=_MAX_PEM, what="certificate").data
        certificates = load_certificates_pem(data)
    except CertificateError as exc:
        raise InputError(f"{path}: {exc}") from None
    if not certificates:
        raise InputError(f"{path} holds no PEM certificate")
    return certificates


@dataclass(frozen=True)
class ApcCertificate:
    """A certificate APC handed us (wrapping or signing), its chain verified."""

    leaf: x509.Certificate
    chain: list[x509.Certificate]
    root_fingerprint: str
    leaf_fingerprint: str
    rsa_algorithm: str


def verify_apc_certificate(
    leaf_text: str,
    chain_text: str,
    *,
    expected_algorithm: str | None,
    trust_apc_root: str | None,
    what: str,
) -> ApcCertificate:
    """Parse APC's certificate and chain (base64 PEM), verify the leaf up to a self-signed
    root in the chain, check its RSA size and the pinned root. ``CertificateError``."""
    from apckx.crypto.certs import (
        certificate_from_apc,
        certificates_from_apc,
        fingerprint_sha256,
        verify_rsa_chain,
    )
    from apckx.crypto.rsa_wrap import rsa_algorithm_for

    try:
        leaf = certificate_from_apc(leaf_text)
        chain = certificates_from_apc(chain_text)
    except ApckxError:
        raise
    except Exception:
        raise CertificateError(f"APC's {what} certificate or its chain does not parse") from None
    verify_rsa_chain(leaf, chain, require_self_signed_root=True)
    public_key = leaf.public_key()
    from cryptography.hazmat.primitives.asymmetric import rsa as rsa_keys

    if not isinstance(public_key, rsa_keys.RSAPublicKey):
        raise CertificateError(f"APC's {what} certificate holds no RSA key")
    algorithm = rsa_algorithm_for(public_key)
    if expected_algorithm is not None and algorithm != expected_algorithm:
        raise CertificateError(
            f"APC's {what} certificate holds an {algorithm} key, not the {expected_algorithm} "
            "asked for"
        )
    roots = [c for c in chain if c.subject == c.issuer]
    root_fp = fingerprint_sha256(roots[0] if roots else chain[-1])
    if trust_apc_root is not None and not hmac.compare_digest(
        root_fp.encode(), trust_apc_root.encode()
    ):
        raise CertificateError(
            f"APC's certificate chain root {root_fp} is not the one --trust-apc-root pins"
        )
    return ApcCertificate(leaf, chain, root_fp, fingerprint_sha256(leaf), algorithm)


class RsaSession:
    """Finds or imports apckx's RSA CA in APC and fetches APC's parameters, journaling."""

    def __init__(
        self,
        apc: ApcService,
        journal: Journal,
        *,
        root_alias: str = TR34_ROOT_ALIAS,
        trust_apc_root: str | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.apc = apc
        self.journal = journal
        self.root_alias = root_alias
        self.trust_apc_root = trust_apc_root
        self.progress = progress or (lambda _msg: None)
        self.tags = {CEREMONY_TAG: journal.ceremony_id}

    def find_or_import_root(
        self, ca_cert: x509.Certificate, *, fresh: bool, role: str = ROOT_ROLE
    ) -> tuple[str, bool]:
        """(ARN, reused): the root alias's key when it is our CA (tag match), else import it
        and point the alias at it. ``fresh``: a CA made now, which APC cannot hold yet."""
        from apckx.crypto.certs import certificate_to_apc, fingerprint_sha256
        from apckx.crypto.rsa_wrap import rsa_algorithm_for

        ca_fp = fingerprint_sha256(ca_cert)
        public_key = ca_cert.public_key()
        algorithm = rsa_algorithm_for(public_key)  # type: ignore[arg-type]
        found = None if fresh else self.apc.find_key(self.root_alias)
        if found is not None and self._root_usable(found, algorithm):
            arn = str(found["KeyArn"])
            tagged = self.apc.list_tags_for_resource(arn).get(CA_FINGERPRINT_TAG, "")
            if hmac.compare_digest(tagged.encode(), ca_fp.encode()):
                self.journal.record_resource(
                    Resource(kind="key", role=role, arn=arn, created=False)
                )
                self.progress(f"reusing root {arn}")
                return arn, True
            self.progress(f"{self.root_alias} holds another CA; importing ours")
        key = self.apc.import_key(
            key_material=root_certificate_material(algorithm, certificate_to_apc(ca_cert)),
            tags={**self.tags, ROLE_TAG: role, CA_FINGERPRINT_TAG: ca_fp},
        )
        arn = str(key["KeyArn"])
        self.journal.record_resource(Resource(kind="key", role=role, arn=arn))
        self.progress(f"imported root {arn}")
        self.set_alias(self.root_alias, arn, role)
        return arn, False

    @staticmethod
    def _root_usable(key: Key, algorithm: str) -> bool:
        attrs = key.get("KeyAttributes", {})
        return bool(
            key.get("KeyState") == "CREATE_COMPLETE"
            and key.get("Enabled", False)
            and attrs.get("KeyClass") == "PUBLIC_KEY"
            and attrs.get("KeyUsage") == S0
            and attrs.get("KeyAlgorithm") == algorithm
        )

    def set_alias(
        self, alias: str, key_arn: str, role: str, *, previous: str | None = None
    ) -> None:
        """CreateAlias (UpdateAlias if it exists), journaled; ``previous``: the key it named,
        which cleanup points it back to."""
        resource = point_alias(
            self.apc, alias, key_arn, role, probably_exists=previous is not None
        )
        if previous is not None:
            resource.previous = previous
        self.journal.record_resource(resource)

    def get_import_parameters(
        self, material_type: str, algorithm: str
    ) -> tuple[str, ApcCertificate]:
        """GetParametersForImport -> (ImportToken, the verified wrapping certificate)."""
        from apckx.service.key_exchange import get_parameters_for_import

        params = get_parameters_for_import(
            self.apc, key_material_type=material_type, wrapping_key_algorithm=algorithm
        )
        certificate = verify_apc_certificate(
            str(params["WrappingKeyCertificate"]),
            str(params["WrappingKeyCertificateChain"]),
            expected_algorithm=algorithm,
            trust_apc_root=self.trust_apc_root,
            what="wrapping",
        )
        self.journal.note_step(
            "import_parameters",
            key_material_type=material_type,
            wrapping_key_algorithm=algorithm,
            apc_root_fingerprint=certificate.root_fingerprint,
            apc_wrapping_fingerprint=certificate.leaf_fingerprint,
        )
        return str(params["ImportToken"]), certificate

    def get_export_parameters(self, algorithm: str = "RSA_2048") -> tuple[str, ApcCertificate]:
        """GetParametersForExport(TR34_KEY_BLOCK) -> (ExportToken, APC's verified KDH cert)."""
        from apckx.service.key_exchange import get_parameters_for_export

        params = get_parameters_for_export(
            self.apc, key_material_type="TR34_KEY_BLOCK", signing_key_algorithm=algorithm
        )
        certificate = verify_apc_certificate(
            str(params["SigningKeyCertificate"]),
            str(params["SigningKeyCertificateChain"]),
            expected_algorithm=None,
            trust_apc_root=self.trust_apc_root,
            what="signing",
        )
        self.journal.note_step(
            "export_parameters",
            signing_key_algorithm=algorithm,
            apc_root_fingerprint=certificate.root_fingerprint,
            apc_signing_fingerprint=certificate.leaf_fingerprint,
        )
        return str(params["ExportToken"]), certificate


def describe_failure(journal: Journal, exc: BaseException) -> str:
    """One line: what failed, where the journal is, how to roll back what was created."""
    detail = str(exc) if isinstance(exc, ApckxError) else type(exc).__name__
    cid = journal.ceremony_id
    created = [r for r in journal.resources if r.created]
    hint = f"; roll back with: apckx cleanup --ceremony {cid}" if created else ""
    return f"ceremony {cid} failed: {detail}; journal {journal.path}{hint}"


def any_to_record(value: Any) -> Any:
    """Paths as text, for journals."""
    return str(value) if isinstance(value, Path) else value
