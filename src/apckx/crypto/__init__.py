"""Pure cryptography for apckx: bytes in, bytes out, no I/O, never boto3/botocore.

Modules: ``keys`` (key material), ``kdf`` and ``ecdh`` (KBPK derivation), ``tr31``
(TR-31 / X9.143 key blocks), ``kcv``, ``attributes`` (APC key attribute rules),
``components`` (XOR key components) and ``certs`` (sender certificates).
"""
