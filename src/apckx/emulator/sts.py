"""STS ``GetCallerIdentity`` on the emulator's endpoint (AWS query protocol, XML answers).

Many APC scripts ask STS for their account first. With one ``AWS_ENDPOINT_URL`` pointing at
the emulator, botocore sends that call here too: ``POST /`` with a form body
(``Action=GetCallerIdentity&Version=2011-06-15``), SigV4-signed for the service ``sts``.
The answer is the account of the signing access key (the emulator has one set of
credentials, so the configured account) and an IAM user ARN named after the access key.
Only ``GetCallerIdentity`` is served; any other action is refused in the query protocol's
error form, which botocore parses to its error code. As in AWS, no IAM permission is needed
to call it, so the emulator's policy file does not apply.
"""

from __future__ import annotations

from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from apckx.emulator.exceptions import ApcServiceException

SIGNING_NAME = "sts"
API_VERSION = "2011-06-15"
CONTENT_TYPE = "text/xml"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
_NAMESPACE = f"https://sts.amazonaws.com/doc/{API_VERSION}/"
OPERATIONS = frozenset({"GetCallerIdentity"})


class InvalidActionError(ApcServiceException):
    """The query protocol's code for an action the endpoint does not serve."""

    error_type = "InvalidAction"
    status = 400


class MissingActionError(ApcServiceException):
    error_type = "MissingAction"
    status = 400


def is_sts_request(path: str, content_type: str | None) -> bool:
    """A form-encoded ``POST /`` is a query-protocol (STS) call; the control plane sends
    JSON 1.0 and the data plane rest-json."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    return path.split("?", 1)[0] == "/" and media_type == FORM_CONTENT_TYPE


def parse_action(body: bytes) -> str:
    """The ``Action`` of a form body; ``InvalidAction``/``MissingAction`` if not served."""
    try:
        form = parse_qs(body.decode("ascii"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise MissingActionError("The request body is not a URL-encoded form") from None
    actions = form.get("Action") or []
    if not actions or not actions[0]:
        raise MissingActionError("The request must contain the parameter Action")
    action = actions[0]
    if action not in OPERATIONS:
        raise InvalidActionError(
            f"Could not find operation {action[:80]} for version {API_VERSION}: the apckx "
            f"emulator serves only sts:GetCallerIdentity"
        )
    return action


def caller_identity_xml(*, account_id: str, access_key_id: str, request_id: str) -> bytes:
    """The ``GetCallerIdentityResponse`` document for the signing access key."""
    user = escape(access_key_id)
    return (
        f'<GetCallerIdentityResponse xmlns="{_NAMESPACE}">'
        "<GetCallerIdentityResult>"
        f"<Arn>arn:aws:iam::{account_id}:user/{user}</Arn>"
        f"<UserId>{user}</UserId>"
        f"<Account>{account_id}</Account>"
        "</GetCallerIdentityResult>"
        f"<ResponseMetadata><RequestId>{escape(request_id)}</RequestId></ResponseMetadata>"
        "</GetCallerIdentityResponse>"
    ).encode()


def error_xml(error: ApcServiceException, request_id: str) -> bytes:
    """The query protocol's ``ErrorResponse`` (botocore reads ``Error/Code`` and ``Message``)."""
    kind = "Receiver" if error.status >= 500 else "Sender"
    return (
        f'<ErrorResponse xmlns="{_NAMESPACE}">'
        f"<Error><Type>{kind}</Type><Code>{escape(error.error_type)}</Code>"
        f"<Message>{escape(error.message)}</Message></Error>"
        f"<RequestId>{escape(request_id)}</RequestId>"
        "</ErrorResponse>"
    ).encode()
