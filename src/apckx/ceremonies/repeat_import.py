"""A repeat KEK import in two round trips: ImportKey at once, every party verified beside it.

A ceremony from a certs dir that has run before knows, from the party hints
(:mod:`apckx.ceremonies.party_hints`), APC's receiver key, its certificate, our root in APC
and where the KEK alias pointed when the last ceremony ended. When that says the import is
wanted (``--replace`` given, and the alias named a key with another KCV), the KEK is wrapped
under the cached certificate, once it has been verified locally exactly as a fetched one
(chain, validity, curve, pinned root), and ImportKey goes out in the same round trip as the
reads that confirm the guess:

* GetKey of the receiver alias: the same ARN, still a usable K3 pair;
* GetPublicKeyCertificate of that key: the same public key under the same chain root;
* GetKey of the root alias and ListTagsForResource of the root: the same ARN, an enabled S0
  key tagged with our CA's fingerprint;
* GetKey of the KEK alias: what the alias check decides (:meth:`KekImportCeremony
  .look_at_kek_alias`).

Then the alias: two calls in sequence instead of three.

When a read contradicts the guess (someone moved an alias, deleted a key, pointed the KEK
alias at a key with this KCV) the speculative key is withdrawn at once (DeleteKey, the
shortest waiting period APC allows, journaled), and the ceremony runs its usual path, or ends
as the alias check says. The key was tagged ``apckx:ceremony`` from the start and is journaled
before anything else happens to it, so a kill at any point leaves it to ``apckx cleanup``.
The wrapped KEK only ever goes to APC, under the receiver key the cached certificate names;
no secret is ever written to the hint file (it holds public certificates, ARNs and KCVs).

``APCKX_NO_SPECULATION=1`` turns this off: every run then reads first and imports after.
"""

from __future__ import annotations

import hmac
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from apckx.ceremonies.ecdh_session import CA_FINGERPRINT_TAG, ReceiverKey, SenderRoot
from apckx.ceremonies.journal import Resource
from apckx.errors import ApckxError

if TYPE_CHECKING:
    from apckx.ceremonies.import_kek import KekImportCeremony, KekImportResult

NO_SPECULATION_ENV = "APCKX_NO_SPECULATION"
WITHDRAW_IN_DAYS = 3  # the shortest DeleteKeyInDays APC takes


@dataclass(frozen=True)
class RepeatGuess:
    """What the last ceremony left that this one would otherwise ask for first."""

    receiver_arn: str
    root_arn: str
    certificate: tuple[str, str]  # APC's (KeyCertificate, KeyCertificateChain) for the receiver


def repeat_guess(ceremony: KekImportCeremony, kek: bytes) -> RepeatGuess | None:
    """The guess a repeat import may act on, or None: run the usual path (a first or resumed
    run, a new receiver asked for, new sender credentials, no hint, or a hint that says the
    alias check would refuse or find this very KEK)."""
    from apckx.crypto.kcv import compute_kcv, kcv_matches

    plan, hints = ceremony.plan, ceremony.session.hints
    if os.environ.get(NO_SPECULATION_ENV, "").strip() not in ("", "0"):
        return None
    if hints is None or ceremony.resume_from is not None or plan.new_receiver_key:
        return None
    if ceremony.credentials is None or not (ceremony.check_alias and ceremony.replace):
        return None
    if not (hints.receiver_arn and hints.root_arn and hints.receiver_certificate):
        return None
    state = hints.alias_state(plan.kek_alias)
    if state is None:
        return None  # nothing known of the alias: look before importing
    local_kcv = compute_kcv(kek, plan.kcv_algorithm, key_algorithm=plan.key_algorithm)
    if state.get("key_algorithm") == plan.key_algorithm and kcv_matches(state["kcv"], local_kcv):
        return None  # probably this KEK already: the alias check alone decides, nothing imported
    return RepeatGuess(hints.receiver_arn, hints.root_arn, hints.receiver_certificate)


def try_repeat_import(
    ceremony: KekImportCeremony, kek: bytes
) -> tuple[KekImportResult, Resource] | None:
    """Run the import speculatively if :func:`repeat_guess` allows; the result and the KEK
    alias resource (not yet journaled), or None when the usual path must run (anything the
    speculative import created has been withdrawn then). Raises what the alias check raises
    (the KEK already there, a move not asked for) after withdrawing."""
    guess = repeat_guess(ceremony, kek)
    if guess is None:
        return None
    session = ceremony.session
    try:
        apc_leaf, apc_root = session.verify_receiver_certificate(
            guess.receiver_arn, *guess.certificate, source="cached"
        )
    except ApckxError as exc:
        ceremony.progress(f"not using the cached certificate of APC's receiver: {exc}")
        return None
    return _RepeatImport(ceremony, guess, apc_leaf, apc_root).run(kek)


class _RepeatImport:
    def __init__(
        self, ceremony: KekImportCeremony, guess: RepeatGuess, apc_leaf: Any, apc_root: Any
    ) -> None:
        from apckx.crypto.certs import fingerprint_sha256
        from apckx.crypto.ecdh import apc_key_algorithm, curve_name

        self.ceremony, self.guess = ceremony, guess
        self.apc_leaf, self.apc_root = apc_leaf, apc_root
        assert ceremony.credentials is not None  # noqa: S101 (repeat_guess checked)
        self.creds = ceremony.credentials[0]
        self.ca_fingerprint = fingerprint_sha256(self.creds.ca_cert)
        self.ca_algorithm = apc_key_algorithm(curve_name(self.creds.ca_cert.public_key()))
        self.receiver = ReceiverKey(guess.receiver_arn, reused=True)
        self.root = SenderRoot(guess.root_arn, reused=True)
        self.fresh_certificate: tuple[str, str] | None = None

    # -- the confirming reads: each returns a problem, or None ---------------------------
    def _named_key(self, alias: str, arn: str) -> tuple[Any, str | None]:
        """GetKey of ``alias``: (the key, None) when it still names ``arn``, else a problem."""
        key = self.ceremony.apc.find_key(alias)
        if key is None:
            return None, f"{alias} names no key"
        if str(key["KeyArn"]) != arn:
            return None, f"{alias} now names {key['KeyArn']}"
        return key, None

    def check_receiver(self) -> str | None:
        c = self.ceremony
        key, problem = self._named_key(c.plan.receiver_alias, self.guess.receiver_arn)
        return problem or c.session.receiver_problem(key)

    def check_certificate(self) -> str | None:
        from apckx.crypto.certs import certificate_from_apc, fingerprint_sha256

        leaf_text, chain_text = self.ceremony.apc.get_public_key_certificate(
            self.guess.receiver_arn
        )
        try:
            leaf, chain = certificate_from_apc(leaf_text), certificate_from_apc(chain_text)
        except Exception:
            return "APC's certificate does not parse"
        if _public_der(leaf) != _public_der(self.apc_leaf):
            return "APC's certificate names another public key"
        if fingerprint_sha256(chain) != fingerprint_sha256(self.apc_root):
            return "APC's certificate chain has another root"
        self.fresh_certificate = (leaf_text, chain_text)
        return None

    def check_root(self) -> str | None:
        c = self.ceremony
        key, problem = self._named_key(c.plan.root_alias, self.guess.root_arn)
        if problem is not None:
            return problem
        if not c.session.root_usable(key, self.ca_algorithm):
            return f"{c.plan.root_alias} is not a usable root for our CA"
        return None

    def check_root_tags(self) -> str | None:
        tags = self.ceremony.apc.list_tags_for_resource(self.guess.root_arn)
        tagged = tags.get(CA_FINGERPRINT_TAG, "")
        if not hmac.compare_digest(tagged.encode(), self.ca_fingerprint.encode()):
            return "the root holds another CA"
        return None

    # -- the run -------------------------------------------------------------------------
    def run(self, kek: bytes) -> tuple[KekImportResult, Resource] | None:
        c = self.ceremony
        started = time.perf_counter()
        creds_future: Future[Any] = Future()
        creds_future.set_result(c.credentials)
        with ThreadPoolExecutor(max_workers=6, thread_name_prefix="apckx") as pool:
            checks = [pool.submit(check) for check in (self.check_receiver, self.check_root,
                      self.check_certificate, self.check_root_tags)]  # fmt: skip
            alias_future = pool.submit(c.look_at_kek_alias, kek)
            c.journal.note_step("speculative_import", receiver=self.guess.receiver_arn,
                                root=self.guess.root_arn)  # fmt: skip
            ready = c.prepare_import(kek, creds_future)
            import_future = pool.submit(
                c.send_import, kek, self.creds, self.apc_leaf, self.receiver, self.root, ready
            )
            # The key is journaled as soon as APC names it, whatever the reads say.
            imported: Any = None
            import_error: BaseException | None = import_future.exception()
            if import_error is None:
                imported = import_future.result()
                c.journal.record_resources([
                    c.kek_resource(imported[0]),
                    c.session.receiver_resource(self.receiver),
                    Resource(kind="key", role="root", arn=self.root.arn, created=False),
                ])  # fmt: skip
            problems: list[str] = []
            for future in checks:
                error = future.exception()
                if error is not None:
                    problems.append(str(error) if isinstance(error, ApckxError)
                                    else type(error).__name__)  # fmt: skip
                elif future.result() is not None:
                    problems.append(str(future.result()))
            alias_error = alias_future.exception()
        c.timings["speculative_round"] = round((time.perf_counter() - started) * 1000.0, 1)
        if problems or alias_error is not None:
            if imported is not None:
                self.withdraw(str(imported[0]["KeyArn"]), problems, alias_error)
            if alias_error is not None and not problems:
                raise alias_error  # the KEK is already there, or a ServiceError: as usual
            c.progress(f"the last ceremony's parties changed ({'; '.join(problems)}): "
                       "looking them up")  # fmt: skip
            return None
        if import_error is not None:
            raise import_error  # every party confirmed: APC refused the import itself
        key, shared_info_hex = imported
        c.verify_kcv(key, ready.local_kcv)
        c.progress(f"reusing receiver key {self.receiver.arn}")
        c.progress(f"reusing sender root {self.root.arn}")
        hints = c.session.hints
        if hints is not None:
            hints.remember(receiver_arn=self.receiver.arn, certificate=self.fresh_certificate,
                           root_arn=self.root.arn, ca_sha256=self.ca_fingerprint)  # fmt: skip
        replaced = alias_future.result()
        result = c.build_result(
            key, local_kcv=ready.local_kcv, shared_info_hex=shared_info_hex,
            receiver=self.receiver, root=self.root, credentials=(self.creds, False),
            apc_leaf=self.apc_leaf, apc_root=self.apc_root, replaced=replaced,
        )  # fmt: skip
        return result, c.set_kek_alias(str(key["KeyArn"]), replaced)

    def withdraw(self, arn: str, problems: list[str], alias_error: BaseException | None) -> None:
        """Delete the speculative key (journaled either way); a failure to delete is said,
        and cleanup still finds the key by its tag."""
        c = self.ceremony
        why = "; ".join(problems) or (
            str(alias_error) if isinstance(alias_error, ApckxError) else "the alias check"
        )
        try:
            c.apc.delete_key(arn, delete_key_in_days=WITHDRAW_IN_DAYS)
        except ApckxError as exc:
            c.journal.step("withdraw_speculative_import", status="failed", arn=arn,
                           reason=why, error=str(exc))  # fmt: skip
            c.progress(f"could not withdraw {arn} ({exc}): apckx cleanup --ceremony "
                       f"{c.journal.ceremony_id} deletes it")  # fmt: skip
            return
        c.journal.step("withdraw_speculative_import", arn=arn, reason=why,
                       delete_key_in_days=WITHDRAW_IN_DAYS)  # fmt: skip
        c.progress(f"withdrew the key imported ahead of the checks, {arn} ({why})")


def _public_der(certificate: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return bytes(
        certificate.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
