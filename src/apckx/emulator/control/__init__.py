"""The emulator's control plane: state and behaviour, one module per concern.

- ``account``: :class:`AccountState` (one per account and region: keys, aliases, the lock,
  the store, the clock, the quotas), key resolution, :func:`locked`, ``BackendRegistry``;
- ``records``: ``KeyRecord``, ``AccountCa`` and the names they use;
- ``common``: refusals, pagination, public-key facts;
- ``keys``: the key lifecycle, KCVs and the key quota;
- ``aliases``, ``tags``: their operations;
- ``resource_policies``: one resource-based policy per key, public ones refused;
- ``certificates``: the account CA, leaves, imported roots and trusted certificates;
- ``key_exchange``: one module per ``KeyMaterial`` member family, and ``dispatch``'s tables.

Import-light: importing the package loads none of them.
"""
