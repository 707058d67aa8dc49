"""The ECDH parties both key exchanges share: APC's receiver key, our sender root, aliases.

``import-kek`` (and ``import-key --via ecdh``) send a key block wrapped under an ECDH-derived
key; ``export-key --via ecdh`` receives one. Either way the parties are the same
(apc-control-plane.md section 7; AWS sample ``import_raw_kek.py``):

* the *receiver*: an ECC key-agreement pair in APC (K3, DeriveKey, DeriveKeyUsage K1), reused
  when the receiver alias (or, on resume, the journal) names a usable one;
* APC's certificate for it, whose chain is verified and optionally pinned (``--trust-apc-root``);
* the *sender root*: our CA imported as an S0 ``RootCertificatePublicKey``, reused when its
  ``apckx:ca-sha256`` tag equals our CA's fingerprint;
* the aliases pointing at them.

:class:`EcdhSession` finds or creates each, journaling every resource as APC confirms it. It
never sees a secret: the derivation itself stays with the caller.
"""

from __future__ import annotations

import hmac
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from apckx.ceremonies.journal import Journal, Resource
from apckx.ceremonies.party_hints import PartyHints
from apckx.errors import ApckxError, CertificateError
from apckx.service.apc import CEREMONY_TAG, ApcService, Key

CA_FINGERPRINT_TAG = "apckx:ca-sha256"
ROLE_TAG = "apckx:role"


def root_certificate_material(algorithm: str, certificate: str) -> dict[str, Any]:
    """ImportKey's ``RootCertificatePublicKey`` material for a sender CA certificate (S0,
    Verify); ``certificate`` as APC takes it (base64 of the PEM)."""
    return {
        "RootCertificatePublicKey": {
            "KeyAttributes": {
                "KeyAlgorithm": algorithm,
                "KeyClass": "PUBLIC_KEY",
                "KeyModesOfUse": {"Verify": True},
                "KeyUsage": "TR31_S0_ASYMMETRIC_KEY_FOR_DIGITAL_SIGNATURE",
            },
            "PublicKeyCertificate": certificate,
        }
    }


def point_alias(
    apc: ApcService, alias: str, key_arn: str, role: str, *, probably_exists: bool
) -> Resource:
    """Point ``alias`` at ``key_arn`` (CreateAlias, or UpdateAlias): the alias resource to
    journal (the caller records it)."""
    created = apc.set_alias(alias, key_arn, probably_exists=probably_exists)
    return Resource(
        kind="alias",
        role=role,
        alias=alias,
        arn=key_arn,
        created=True,
        note=None if created else "existing alias updated",
    )
RECEIVER_DERIVE_KEY_USAGE = "TR31_K1_KEY_BLOCK_PROTECTION_KEY"

# The strongest key each curve may derive (and transport): APC's curve caps.
STRONGEST_DERIVE_KEY_ALGORITHM = {"P256": "AES_128", "P384": "AES_192", "P521": "AES_256"}


@dataclass
class ReceiverKey:
    """APC's key-agreement pair (K3) the key block is exchanged with."""

    arn: str
    reused: bool


@dataclass
class SenderRoot:
    """Our sender CA, imported into APC as a root certificate (S0)."""

    arn: str
    reused: bool


TRUST_APC_ROOT_ENV = "APCKX_TRUST_APC_ROOT"
"""Where ``--trust-apc-root`` comes from when the flag is not given (SHA-256, colons allowed)."""


def configured_trust_apc_root(environ: Mapping[str, str] | None = None) -> str | None:
    """The pinned APC root from :data:`TRUST_APC_ROOT_ENV`, normalized; None when unset.
    A malformed value is an ``InputError`` (before any call)."""
    value = (os.environ if environ is None else environ).get(TRUST_APC_ROOT_ENV, "").strip()
    if not value:
        return None
    from apckx.ceremonies.import_kek import normalize_fingerprint

    return normalize_fingerprint(value, flag=TRUST_APC_ROOT_ENV)


def _warn_on_stderr(message: str) -> None:
    print(f"apckx: warning: {message}", file=sys.stderr, flush=True)


def _endpoint_url(apc: ApcService) -> str:
    meta = getattr(getattr(apc, "client", None), "meta", None)
    return str(getattr(meta, "endpoint_url", "") or "")


def _host(url: str) -> tuple[str, str]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.scheme.lower(), (parts.hostname or "").lower()


def _is_aws_endpoint(url: str) -> bool:
    scheme, host = _host(url)
    return scheme == "https" and host.endswith((".amazonaws.com", ".amazonaws.com.cn", ".api.aws"))


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _plain_http_to_another_host(url: str) -> bool:
    scheme, host = _host(url)
    return scheme == "http" and not _is_loopback(host)


class EcdhSession:
    """Finds or creates the ECDH parties in APC for one ceremony, journaling each."""

    def __init__(
        self,
        apc: ApcService,
        journal: Journal,
        *,
        curve: str,
        receiver_alias: str,
        root_alias: str,
        new_receiver_key: bool = False,
        trust_apc_root: str | None = None,
        resume_from: Journal | None = None,
        progress: Callable[[str], None] | None = None,
        warn: Callable[[str], None] | None = None,
        hints: PartyHints | None = None,
    ) -> None:
        """``curve``: normalized (``P521``); ``trust_apc_root``: a normalized fingerprint
        (None: :data:`TRUST_APC_ROOT_ENV`, else trust on first use, said out loud through
        ``warn``); ``resume_from``: a failed ceremony's journal whose receiver and root are
        reused; ``hints``: the last ceremony's ARNs (:mod:`apckx.ceremonies.party_hints`), whose
        second reads are sent beside the alias lookups; every answer is checked as usual."""
        self.apc = apc
        self.journal = journal
        self.curve = curve
        self.receiver_alias = receiver_alias
        self.root_alias = root_alias
        self.new_receiver_key = new_receiver_key
        self.trust_apc_root = trust_apc_root
        self.resume_from = resume_from
        self.progress = progress or (lambda _msg: None)
        self.warn = warn or _warn_on_stderr
        self.tags = {CEREMONY_TAG: journal.ceremony_id}
        self.hints = hints
        if self.trust_apc_root is None:
            self.trust_apc_root = configured_trust_apc_root()
        self.endpoint_url = _endpoint_url(apc)
        if _plain_http_to_another_host(self.endpoint_url):
            self.warn(
                f"{self.endpoint_url} is plain http to another host: anyone on the way can "
                "read and change the requests and APC's answers; use https"
            )

    # -- receiver ------------------------------------------------------------------------
    def find_or_create_receiver(self, fresh: bool, *, record: bool = True) -> ReceiverKey:
        """The journal's (on resume) or the receiver alias's key if usable, else CreateKey.

        ``fresh``: new sender credentials, which nothing in APC can be paired with yet: no
        lookup, a new receiver key. ``record=False``: the caller journals
        :meth:`receiver_resource` itself, at once (while it fetches APC's certificate).
        """
        if self.hints is not None:
            self.hints.start(self.apc)
        candidate: str | None = None
        if self.resume_from is not None:
            previous = self.resume_from.find(kind="key", role="receiver")
            candidate = previous.arn if previous else None
        elif not self.new_receiver_key and not fresh:
            candidate = self.receiver_alias
        if candidate:
            key = self.apc.find_key(candidate)
            problem = None if key is None else self.receiver_problem(key)
            if key is not None and problem is None:
                receiver = ReceiverKey(str(key["KeyArn"]), reused=True)
                if record:
                    self.journal.record_resource(self.receiver_resource(receiver))
                self.progress(f"reusing receiver key {receiver.arn}")
                return receiver
            if key is not None:
                self.progress(f"not reusing {candidate}: {problem}")
        from apckx.crypto.ecdh import apc_key_algorithm

        key = self.apc.create_key(
            key_attributes={
                "KeyAlgorithm": apc_key_algorithm(self.curve),
                "KeyClass": "ASYMMETRIC_KEY_PAIR",
                "KeyModesOfUse": {"DeriveKey": True},
                "KeyUsage": "TR31_K3_ASYMMETRIC_KEY_FOR_KEY_AGREEMENT",
            },
            exportable=True,
            derive_key_usage=RECEIVER_DERIVE_KEY_USAGE,
            tags={**self.tags, ROLE_TAG: "receiver"},
        )
        receiver = ReceiverKey(str(key["KeyArn"]), reused=False)
        if record:
            self.journal.record_resource(self.receiver_resource(receiver))
        self.progress(f"created receiver key {receiver.arn}")
        return receiver

    @staticmethod
    def receiver_resource(receiver: ReceiverKey) -> Resource:
        """The journal's entry for the receiver key (``created=False`` when reused)."""
        return Resource(kind="key", role="receiver", arn=receiver.arn, created=not receiver.reused)

    def receiver_problem(self, key: Key) -> str | None:
        """Why ``key`` can't serve as the receiver on this curve, or None if it can."""
        from apckx.crypto.ecdh import apc_key_algorithm

        attrs = key.get("KeyAttributes", {})
        if key.get("KeyState") != "CREATE_COMPLETE":
            return f"state {key.get('KeyState')}"
        if not key.get("Enabled", False):
            return "disabled"
        if attrs.get("KeyUsage") != "TR31_K3_ASYMMETRIC_KEY_FOR_KEY_AGREEMENT":
            return f"usage {attrs.get('KeyUsage')}"
        if attrs.get("KeyAlgorithm") != apc_key_algorithm(self.curve):
            return f"algorithm {attrs.get('KeyAlgorithm')}"
        if not attrs.get("KeyModesOfUse", {}).get("DeriveKey", False):
            return "no DeriveKey mode"
        if key.get("DeriveKeyUsage") != RECEIVER_DERIVE_KEY_USAGE:
            return f"DeriveKeyUsage {key.get('DeriveKeyUsage')}"
        return None

    def fetch_receiver_certificate(self, receiver_arn: str) -> tuple[Any, Any]:
        """GetPublicKeyCertificate, then verify APC's chain and the pinned root: (leaf, root)."""
        prefetched = self.hints.certificate_for(receiver_arn) if self.hints else None
        leaf_text, chain_text = prefetched or self.apc.get_public_key_certificate(receiver_arn)
        return self.verify_receiver_certificate(receiver_arn, leaf_text, chain_text)

    def verify_receiver_certificate(
        self, receiver_arn: str, leaf_text: str, chain_text: str, *, source: str = "APC"
    ) -> tuple[Any, Any]:
        """Verify APC's certificate for ``receiver_arn`` (as GetPublicKeyCertificate returns
        it: base64 PEM leaf and chain): the chain, validity, curve and the pinned root, or the
        receiver profile on first use. ``source`` says where it came from in the journal
        (``APC``, or ``cached`` for a repeat ceremony's copy). Returns (leaf, chain root)."""
        from apckx.crypto.certs import (
            certificate_from_apc,
            check_receiver_certificate_profile,
            fingerprint_sha256,
            verify_apc_chain,
        )

        try:
            leaf = certificate_from_apc(leaf_text)
            chain_root = certificate_from_apc(chain_text)
        except ApckxError:
            raise
        except Exception:
            raise CertificateError("APC's certificate or chain does not parse") from None
        verify_apc_chain(leaf, chain_root, expected_curve=self.curve)
        root_fp = fingerprint_sha256(chain_root)
        pinned = self.trust_apc_root
        if pinned is not None and not hmac.compare_digest(root_fp.encode(), pinned.encode()):
            raise CertificateError(
                f"APC's certificate chain root {root_fp} is not the one --trust-apc-root pins"
            )
        if pinned is None:
            # Trust on first use: the chain must at least look like a receiver's.
            check_receiver_certificate_profile(leaf, chain_root)
            if not _is_aws_endpoint(self.endpoint_url):
                message = (
                    f"trusting APC's certificate on first use: {self.endpoint_url} is not an "
                    f"AWS endpoint and no root is pinned; the root seen is {root_fp} (pin it "
                    f"with --trust-apc-root or {TRUST_APC_ROOT_ENV})"
                )
                # A loopback endpoint (the emulator, apckx demo) is this machine's own
                # process: said as progress; anything else is a warning.
                local = _is_loopback(_host(self.endpoint_url)[1])
                (self.progress if local else self.warn)(message)
        self.journal.note_step(
            "verify_apc_certificate",
            apc_root_fingerprint=root_fp,
            apc_leaf_fingerprint=fingerprint_sha256(leaf),
            pinned=pinned is not None,
            trust="pinned" if pinned is not None else "first use",
            endpoint=self.endpoint_url,
            source=source,
        )
        if self.hints is not None:
            self.hints.remember(receiver_arn=receiver_arn, certificate=(leaf_text, chain_text))
        return leaf, chain_root

    # -- root ----------------------------------------------------------------------------
    def find_or_import_root(
        self, load_credentials: Callable[[], tuple[Any, bool]], fresh: bool
    ) -> SenderRoot:
        """The journal's (on resume) or the root alias's key if it holds our CA, else import it.

        ``load_credentials`` returns the sender credentials (and whether they were created);
        it is called after the lookup, so the lookup can run while they load.
        """
        from apckx.crypto.certs import certificate_to_apc, fingerprint_sha256
        from apckx.crypto.ecdh import apc_key_algorithm, curve_name

        if self.hints is not None:
            self.hints.start(self.apc)
        candidate: str | None = None
        if self.resume_from is not None:
            previous = self.resume_from.find(kind="key", role="root")
            candidate = previous.arn if previous else None
        elif not fresh:
            candidate = self.root_alias
        # The lookup needs no local credentials: it runs while they load.
        found = self.apc.find_key(candidate) if candidate else None
        creds, _created = load_credentials()
        ca_fp = fingerprint_sha256(creds.ca_cert)
        ca_algorithm = apc_key_algorithm(curve_name(creds.ca_cert.public_key()))
        if found is not None and self.root_usable(found, ca_algorithm):
            arn = str(found["KeyArn"])
            prefetched = self.hints.tags_for(arn) if self.hints else None
            tags = prefetched if prefetched is not None else self.apc.list_tags_for_resource(arn)
            tagged_fp = tags.get(CA_FINGERPRINT_TAG, "")
            if hmac.compare_digest(tagged_fp.encode(), ca_fp.encode()):
                self.journal.record_resource(
                    Resource(kind="key", role="root", arn=arn, created=False)
                )
                self.progress(f"reusing sender root {arn}")
                if self.hints is not None:
                    self.hints.remember(root_arn=arn, ca_sha256=ca_fp)
                return SenderRoot(arn, reused=True)
            self.progress(f"{candidate} holds another CA; importing ours")
        key = self.apc.import_key(
            key_material=root_certificate_material(ca_algorithm, certificate_to_apc(creds.ca_cert)),
            tags={**self.tags, ROLE_TAG: "root", CA_FINGERPRINT_TAG: ca_fp},
        )
        arn = str(key["KeyArn"])
        self.journal.record_resource(Resource(kind="key", role="root", arn=arn))
        self.progress(f"imported sender root {arn}")
        if self.hints is not None:
            self.hints.remember(root_arn=arn, ca_sha256=ca_fp)
        return SenderRoot(arn, reused=False)

    @staticmethod
    def root_usable(key: Key, ca_algorithm: str) -> bool:
        """An enabled S0 public key of our CA's algorithm (its tag is checked separately)."""
        attrs = key.get("KeyAttributes", {})
        return bool(
            key.get("KeyState") == "CREATE_COMPLETE"
            and key.get("Enabled", False)
            and attrs.get("KeyClass") == "PUBLIC_KEY"
            and attrs.get("KeyUsage") == "TR31_S0_ASYMMETRIC_KEY_FOR_DIGITAL_SIGNATURE"
            and attrs.get("KeyAlgorithm") == ca_algorithm
        )

    # -- aliases -------------------------------------------------------------------------
    def set_alias(
        self,
        alias: str,
        key_arn: str,
        role: str,
        *,
        probably_exists: bool = False,
        record: bool = True,
    ) -> Resource:
        """Point ``alias`` at ``key_arn`` (CreateAlias, or UpdateAlias) and journal it.

        ``record=False``: the caller journals the returned resource itself, at once (a
        ceremony's last alias is saved together with its final status).
        """
        resource = point_alias(self.apc, alias, key_arn, role, probably_exists=probably_exists)
        if record:
            self.journal.record_resource(resource)
        return resource
