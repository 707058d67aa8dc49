"""apckx: key exchange with AWS Payment Cryptography, done the way a key custodian wants it."""

__version__ = "0.1.0"
