"""A local AWS Payment Cryptography control plane that does the real cryptography.

moto layout: ``control`` (state and behaviour per account and region, one module per
concern), ``responses`` (one handler per botocore operation, ``dispatch``), ``exceptions``
(AWS wire errors), ``validation`` (input checked against the botocore model), ``state``
(persistence), ``server`` (the wire). Import-light on purpose: importing the package loads
none of them.
"""
