"""Pure cryptography for apckx: bytes in, bytes out, no I/O, never boto3/botocore.

Modules: ``keys`` (key material), ``kdf`` and ``ecdh`` (KBPK derivation), ``tr31``
(TR-31 / X9.143 key blocks), ``kcv``, ``attributes`` (APC key attribute rules),
``components`` (XOR key components), ``certs`` (sender certificates, RSA too),
``tr34`` (TR-34-2012 key blocks in APC's shape) and ``rsa_wrap`` (RSA-OAEP KeyCryptogram).
"""
