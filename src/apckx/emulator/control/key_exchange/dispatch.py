"""ImportKey's and ExportKey's tables: ``KeyMaterial`` union member -> the function that
handles it.

To add a member, write ``import_<member>``/``export_<member>`` in its own module (the
signatures are in :mod:`apckx.emulator.control.key_exchange.common`) and add one line here.
A member missing from a table is refused with ``ValidationException``
(``KeyMaterial.<Member> is not implemented by the apckx emulator``).
"""

from __future__ import annotations

from apckx.emulator.control import certificates
from apckx.emulator.control.key_exchange import ecdh, tr31
from apckx.emulator.control.key_exchange.common import ExportFunction, ImportFunction

#: ImportKey ``KeyMaterial`` member -> import function.
IMPORTERS: dict[str, ImportFunction] = {
    "RootCertificatePublicKey": certificates.import_root_certificate,
    "TrustedCertificatePublicKey": certificates.import_trusted_certificate,
    "Tr31KeyBlock": tr31.import_tr31_key_block,
    "DiffieHellmanTr31KeyBlock": ecdh.import_diffie_hellman_tr31_key_block,
}

#: ExportKey ``KeyMaterial`` member -> export function.
EXPORTERS: dict[str, ExportFunction] = {
    "Tr31KeyBlock": tr31.export_tr31_key_block,
    "DiffieHellmanTr31KeyBlock": ecdh.export_diffie_hellman_tr31_key_block,
}
