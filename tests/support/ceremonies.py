"""What the emulator holds for a ceremony, read from APC's side (its ``apckx:ceremony`` tags),
to compare with what the ceremony's journal says it created."""

from __future__ import annotations

from apckx.service.apc import CEREMONY_TAG, ApcService


def ceremony_resources(apc: ApcService, cid: str) -> tuple[set[str], set[str]]:
    """(key ARNs, alias names) the emulator holds for ceremony ``cid`` (by its tag)."""
    keys = {
        str(k["KeyArn"])
        for k in apc.list_keys()
        if apc.list_tags_for_resource(str(k["KeyArn"])).get(CEREMONY_TAG) == cid
    }
    aliases = {str(a["AliasName"]) for a in apc.list_aliases() if a.get("KeyArn") in keys}
    return keys, aliases
