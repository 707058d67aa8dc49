"""How keys move in and out: one module per ``KeyMaterial`` union member family.

``tr31`` (Tr31KeyBlock), ``ecdh`` (DiffieHellmanTr31KeyBlock); the certificate members
(RootCertificatePublicKey, TrustedCertificatePublicKey) live in
:mod:`apckx.emulator.control.certificates`. ImportKey and ExportKey find the function for a
member in the tables of :mod:`apckx.emulator.control.key_exchange.dispatch`; the request
types they share are in :mod:`apckx.emulator.control.key_exchange.common`.

This ``__init__`` imports nothing, so a member module may import ``common`` and other
control modules without a cycle.
"""
