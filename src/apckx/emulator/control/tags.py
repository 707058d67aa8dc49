"""TagResource, UntagResource, ListTagsForResource (spec 5.6), and the tag checks every
key-creating operation runs."""

from __future__ import annotations

from collections.abc import Sequence

from apckx.emulator.control.account import AccountState, locked
from apckx.emulator.control.common import paginate
from apckx.emulator.exceptions import ServiceQuotaExceededException, ValidationException

MAX_TAGS_PER_KEY = 200


def check_tags(tags: Sequence[tuple[str, str]]) -> dict[str, str]:
    """The tags as a dict; refuses reserved ``aws:`` keys and duplicates."""
    result: dict[str, str] = {}
    for tag_key, tag_value in tags:
        if tag_key.lower().startswith("aws:"):
            raise ValidationException(f"Tag keys starting with 'aws:' are reserved: {tag_key}")
        if tag_key in result:
            raise ValidationException(f"Tag key {tag_key} appears more than once")
        result[tag_key] = tag_value
    return result


@locked
def tag_resource(account: AccountState, resource_arn: str,
                 tags: Sequence[tuple[str, str]]) -> None:
    """TagResource: add tags or overwrite values; others stay (spec 5.6)."""
    key = account.key_by_arn(resource_arn)
    new_tags = check_tags(tags)
    merged = {**key.tags, **new_tags}
    if len(merged) > MAX_TAGS_PER_KEY:
        raise ServiceQuotaExceededException(
            f"Key {key.arn} would have {len(merged)} tags; at most {MAX_TAGS_PER_KEY}"
        )
    account.update_key(key, tags=merged)


@locked
def untag_resource(account: AccountState, resource_arn: str, tag_keys: Sequence[str]) -> None:
    key = account.key_by_arn(resource_arn)
    removed = set(tag_keys)
    account.update_key(key, tags={k: v for k, v in key.tags.items() if k not in removed})


@locked
def list_tags_for_resource(account: AccountState, resource_arn: str, *,
                           next_token: str | None = None, max_results: int | None = None
                           ) -> tuple[list[tuple[str, str]], str | None]:
    key = account.key_by_arn(resource_arn)
    items = [(tag_key, (tag_key, value)) for tag_key, value in key.tags.items()]
    return paginate("tags", items, next_token, max_results)
