"""A local AWS Payment Cryptography control plane that does the real cryptography.

moto layout: ``models`` (state and behaviour per account and region), ``responses`` (one
handler per botocore operation, ``dispatch``), ``exceptions`` (AWS wire errors),
``validation`` (input checked against the botocore model), ``state`` (persistence).
Import-light on purpose: importing the package loads none of them.
"""
