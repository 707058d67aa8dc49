"""ImportKey's and ExportKey's tables: ``KeyMaterial`` union member -> the function that
handles it.

To add a member, write ``import_<member>``/``export_<member>`` in its own module (the
signatures are in :mod:`apckx.emulator.control.key_exchange.common`) and add one line here.
A member missing from a table is refused with ``ValidationException``
(``KeyMaterial.<Member> is not implemented by the apckx emulator``).
"""

from __future__ import annotations

from apckx.emulator.control import certificates
from apckx.emulator.control.key_exchange import as2805, ecdh, key_cryptogram, tr31, tr34
from apckx.emulator.control.key_exchange.common import ExportFunction, ImportFunction

#: ImportKey ``KeyMaterial`` member -> import function.
IMPORTERS: dict[str, ImportFunction] = {
    "RootCertificatePublicKey": certificates.import_root_certificate,
    "TrustedCertificatePublicKey": certificates.import_trusted_certificate,
    "Tr31KeyBlock": tr31.import_tr31_key_block,
    "DiffieHellmanTr31KeyBlock": ecdh.import_diffie_hellman_tr31_key_block,
    "Tr34KeyBlock": tr34.import_tr34_key_block,
    "KeyCryptogram": key_cryptogram.import_key_cryptogram,
    "As2805KeyCryptogram": as2805.import_as2805_key_cryptogram,
}

#: ExportKey ``KeyMaterial`` member -> export function.
EXPORTERS: dict[str, ExportFunction] = {
    "Tr31KeyBlock": tr31.export_tr31_key_block,
    "DiffieHellmanTr31KeyBlock": ecdh.export_diffie_hellman_tr31_key_block,
    "Tr34KeyBlock": tr34.export_tr34_key_block,
    "KeyCryptogram": key_cryptogram.export_key_cryptogram,
    "As2805KeyCryptogram": as2805.export_as2805_key_cryptogram,
}
