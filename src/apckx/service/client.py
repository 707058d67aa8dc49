"""The botocore client factory: region, profile, credentials, endpoint, retries.

The one place the AWS SDK is configured. apckx builds its client from botocore directly:
boto3 adds nothing apckx uses and costs ~180 ms to import (most of it s3transfer).

aws-cli conventions: ``endpoint_url=None`` lets botocore apply
``AWS_ENDPOINT_URL_PAYMENT_CRYPTOGRAPHY`` (and the profile's ``endpoint_url``) itself; AWS
variables are never re-read by hand. Retries use botocore's own ``standard`` or ``adaptive``
mode, which retry ThrottlingException and 5xx answers with jittered backoff.

**Credentials** are botocore's own chain, the one the AWS CLI uses: ``--profile`` or
``AWS_PROFILE``, static keys and the ``AWS_*`` variables, IAM Identity Center (SSO, with the
token ``aws sso login`` cached), assume-role (``role_arn`` + ``source_profile`` or
``credential_source``, MFA prompted on the terminal), web identity, ``credential_process``,
container and instance metadata. As the AWS CLI does, assume-role and web-identity
credentials are cached in ``~/.aws/cli/cache``, so an MFA code is asked once per session and
shared with ``aws``. The CLI resolves credentials before a ceremony starts
(``require_credentials``); every failure becomes one :class:`ConfigError` line naming the
profile and what to do (:func:`describe_credential_error`).

**Start-up.** Building a client is most of a ceremony's local time, so the session gets a data
loader (:func:`make_data_loader`) that does botocore's loading with two costs removed: listing
every service directory (~400, twice) to learn that a service exists (it looks the service up
by name instead, falling back to botocore's own listing, and its ``UnknownServiceError``, only
for a name it does not find: so ``sso``, ``sts`` and every other service botocore asks for
load as before), and parsing the 1.2 MB ``endpoints.json`` into ``OrderedDict`` objects
(plain dicts keep the order too); the large files are parsed once and then read back from a
private ``marshal`` copy in ``~/.cache/apckx`` (:func:`load_json_cached`). Search paths and
``AWS_DATA_PATH``/``data_path`` are unchanged.

botocore also spells every event name through its alias table (``EVENT_ALIASES``) the first
time a session or client sees it: ~6 ms of string work for the ~130 handlers a new session
registers, and more as each operation's events are first emitted. The session is a
:class:`botocore.session.Session` whose aliaser starts with last run's answers
(:class:`EventAliasCache`), for the very botocore installation that computed them; a name not
in it is aliased by botocore as ever, and nothing is registered differently or in another
order.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import weakref
from typing import Any
from urllib.parse import urlsplit

from apckx.errors import ConfigError, InputError

SERVICE_NAME = "payment-cryptography"
DATA_SERVICE_NAME = "payment-cryptography-data"
RETRY_MODES = ("standard", "adaptive", "legacy")
CLI_CACHE_DIR = os.path.join("~", ".aws", "cli", "cache")  # the AWS CLI's credential cache

_log = logging.getLogger("apckx.service")

# The session, endpoint and config each control-plane client was built with, so the data-plane
# client (make_data_client) comes from the same session: one credential resolution, one region.
_CLIENT_ORIGINS: weakref.WeakKeyDictionary[Any, tuple[Any, str | None, Any, str]] = (
    weakref.WeakKeyDictionary()
)


def check_endpoint_url(endpoint_url: str) -> str:
    """Return ``endpoint_url`` if it is an absolute http(s) URL with a host, else InputError."""
    text = endpoint_url.strip()
    try:
        parts = urlsplit(text)
        port = parts.port  # raises ValueError on a bad port
    except ValueError as exc:
        raise InputError(f"--endpoint-url is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise InputError("--endpoint-url must start with http:// or https://")
    if not parts.hostname:
        raise InputError("--endpoint-url has no host name")
    if port == 0:
        raise InputError("--endpoint-url has port 0")
    if parts.query or parts.fragment:
        raise InputError("--endpoint-url must not carry a query or fragment")
    return text


def check_retry_options(retry_mode: str, max_attempts: int) -> None:
    """Validate the retry settings before any client is built."""
    if retry_mode not in RETRY_MODES:
        raise InputError(f"--retry-mode must be one of {', '.join(RETRY_MODES)}")
    if not 1 <= max_attempts <= 20:
        raise InputError(f"--max-attempts must be between 1 and 20 (got {max_attempts})")


def make_data_loader(data_path: str | None = None) -> Any:
    """A ``botocore.loaders.Loader`` that finds services by name (see the module docstring).

    ``data_path``: ``AWS_DATA_PATH``/the profile's ``data_path`` (``os.pathsep``-separated),
    searched before the default paths, as botocore's own ``create_loader`` does.
    """
    import gzip

    import botocore.exceptions
    import botocore.loaders

    class PlainJSONFileLoader(botocore.loaders.JSONFileLoader):  # type: ignore[misc]
        """botocore's ``.json``/``.json.gz`` loading, into plain (ordered) dicts; large files
        through :func:`load_json_cached`."""

        def load_file(self, file_path: str) -> Any:
            for suffix, opener in ((".json", open), (".json.gz", gzip.open)):
                full_path = file_path + suffix
                if os.path.isfile(full_path):
                    return load_json_cached(full_path, opener)
            return None

    class ServiceLoader(botocore.loaders.Loader):  # type: ignore[misc]
        """Loads a service model by name, without listing every service first."""

        FILE_LOADER_CLASS = PlainJSONFileLoader

        @botocore.loaders.instance_cache  # type: ignore[untyped-decorator]
        def load_service_model(
            self, service_name: str, type_name: str, api_version: str | None = None
        ) -> Any:
            try:
                found = self.list_api_versions(service_name, type_name)
            except botocore.exceptions.DataNotFoundError:
                found = []
            if not found:  # botocore's own path: the full listing and UnknownServiceError
                return super().load_service_model(service_name, type_name, api_version)
            if api_version is None:
                api_version = found[-1]  # list_api_versions is sorted: the latest, as botocore
            model = self.load_data(os.path.join(service_name, api_version, type_name))
            self._extras_processor.process(
                model, self._find_extras(service_name, type_name, api_version)
            )
            return model

    extra_paths = None
    if data_path is not None:  # botocore.loaders.create_loader's parsing
        extra_paths = [
            os.path.expanduser(os.path.expandvars(path)) for path in data_path.split(os.pathsep)
        ]
    return ServiceLoader(extra_search_paths=extra_paths)


CACHE_MIN_BYTES = 64 * 1024  # endpoints.json (1.2 MB), a service model: parsing costs tens of ms


def data_cache_dir() -> str:
    """``$XDG_CACHE_HOME/apckx/botocore-data`` (default ``~/.cache/...``)."""
    from apckx._startup import cache_dir

    return cache_dir("botocore-data")


def load_json_cached(path: str, opener: Any) -> Any:
    """A botocore data file's JSON, parsed once and then read back with ``marshal`` (several
    times faster than ``json``), for files of at least :data:`CACHE_MIN_BYTES`.

    The cached copy is named after the file's path, size, mtime and the Python version, so an
    upgraded botocore or a changed ``AWS_DATA_PATH`` model is parsed afresh. It is used only if
    it and its directory belong to this user and nobody else may write them; any problem
    (unreadable, foreign, corrupt) falls back to parsing the JSON. The data is botocore's
    public model data, nothing secret.
    """
    import hashlib
    import marshal

    from apckx._startup import read_private_cache, write_private_cache

    try:
        info = os.stat(path)
    except OSError:
        info = None
    if info is None or info.st_size < CACHE_MIN_BYTES:
        with opener(path, "rb") as handle:
            return json.loads(handle.read().decode("utf-8"))
    tag = f"{path}|{info.st_size}|{info.st_mtime_ns}|{sys.version_info[:2]}"
    cache_dir = data_cache_dir()
    cached = os.path.join(cache_dir, hashlib.sha256(tag.encode()).hexdigest() + ".marshal")
    raw = read_private_cache(cache_dir, cached)
    if raw is not None:
        try:
            return marshal.loads(raw)  # noqa: S302 (our own file, checked above)
        except (ValueError, EOFError, TypeError):
            pass
    with opener(path, "rb") as handle:
        data = json.loads(handle.read().decode("utf-8"))
    write_private_cache(cache_dir, cached, marshal.dumps(data))
    return data


EVENT_ALIAS_CACHE_MAX = 8192  # names; a ceremony sees ~300


class EventAliasCache:
    """botocore's event-name aliases (``EventAliaser._alias_name_cache``: name -> aliased
    name) from earlier runs, keyed by the botocore that computed them (its version, its
    ``EVENT_ALIASES`` and its ``hooks.py``): another botocore reads none of them.

    Private to the user (:func:`apckx._startup.read_private_cache`); any problem (absent,
    foreign, corrupt, another botocore, botocore's internals renamed) means no seeding, which
    is botocore's own behaviour. The names are botocore's event names, nothing secret.
    """

    def __init__(self, path: str | None = None) -> None:
        from apckx._startup import cache_dir

        self.path = path or os.path.join(cache_dir("botocore-events"), "aliases.marshal")
        self.loaded: dict[str, str] | None = None
        self.learning: list[dict[Any, Any]] = []  # the seeded caches, read back at exit

    @staticmethod
    def botocore_tag() -> str:
        import hashlib

        import botocore
        import botocore.hooks
        import botocore.utils

        info = os.stat(botocore.hooks.__file__)
        aliases = repr(sorted(getattr(botocore.utils, "EVENT_ALIASES", {}).items()))
        digest = hashlib.sha256(aliases.encode()).hexdigest()
        return f"{botocore.__version__}|{info.st_size}|{info.st_mtime_ns}|{digest}"

    def load(self) -> dict[str, str]:
        if self.loaded is None:
            import marshal

            from apckx._startup import read_private_cache

            self.loaded = {}
            raw = read_private_cache(os.path.dirname(self.path), self.path)
            try:
                data = marshal.loads(raw) if raw is not None else None  # noqa: S302 (ours)
            except (ValueError, EOFError, TypeError):
                data = None
            names = data.get("aliases") if isinstance(data, dict) else None
            if (
                isinstance(names, dict)
                and data.get("botocore") == self.botocore_tag()  # type: ignore[union-attr]
                and all(type(k) is str and type(v) is str for k, v in names.items())
            ):
                self.loaded = names
        return self.loaded

    def seed(self, aliaser: Any, *, learn: bool = False) -> None:
        """Give ``aliaser`` (a session's or client's ``EventAliaser``) the known answers;
        with ``learn``, what it aliases from now on is saved by :meth:`save`."""
        cache = getattr(aliaser, "_alias_name_cache", None)
        if isinstance(cache, dict):
            for name, aliased in self.load().items():
                cache.setdefault(name, aliased)
            if learn and len(self.learning) < 16:
                self.learning.append(cache)

    def save(self) -> None:
        """Write what the seeded aliasers learnt (best effort; only if anything is new)."""
        import marshal

        from apckx._startup import usable_cache_dir, write_private_cache

        known = dict(self.load())
        before = len(known)
        for cache in self.learning:
            for name, aliased in list(cache.items()):
                if len(known) >= EVENT_ALIAS_CACHE_MAX:
                    break
                if type(name) is str and type(aliased) is str:
                    known.setdefault(name, aliased)
        if len(known) == before or not usable_cache_dir(os.path.dirname(self.path)):
            return
        data = marshal.dumps({"botocore": self.botocore_tag(), "aliases": known})
        write_private_cache(os.path.dirname(self.path), self.path, data)
        self.loaded = known


_EVENT_ALIASES: EventAliasCache | None = None


def event_alias_cache() -> EventAliasCache:
    """The process's :class:`EventAliasCache`; the console script saves it at exit."""
    global _EVENT_ALIASES
    if _EVENT_ALIASES is None:
        from apckx import _startup

        _EVENT_ALIASES = EventAliasCache()
        _startup.save_at_exit(_EVENT_ALIASES.save)
    return _EVENT_ALIASES


def seed_event_aliases(aliaser: Any) -> None:
    """Seed a session's or client's event aliaser; in the console script (not in-process
    callers, which build clients by the hundred) its new names are saved at exit."""
    from apckx import _startup

    event_alias_cache().seed(aliaser, learn=_startup.in_console_script())


def new_session(profile: str | None = None) -> Any:
    """``botocore.session.Session(profile=profile)``, its event aliaser seeded from the
    :class:`EventAliasCache` before the built-in handlers are registered."""
    import botocore.session

    class Session(botocore.session.Session):  # type: ignore[misc]
        def _register_builtin_handlers(self, events: Any) -> None:
            seed_event_aliases(events)
            super()._register_builtin_handlers(events)

    return Session(profile=profile)


def profile_label(session: Any) -> str:
    """The profile botocore uses (``--profile``, ``AWS_PROFILE`` or ``default``), for messages."""
    try:
        name = session.profile
    except Exception:  # an unset AWS_PROFILE etc.: botocore's own fallback
        name = None
    return str(name or "default")


def describe_credential_error(exc: BaseException, profile: str) -> str | None:
    """One line for a botocore credential failure: what went wrong, for which profile, and what
    to do; None if ``exc`` is not a credential failure."""
    import botocore.exceptions as bex

    where = f"AWS profile {profile!r}"
    login = f"run aws sso login --profile {profile}"
    if isinstance(exc, bex.UnauthorizedSSOTokenError | bex.SSOTokenLoadError):
        return f"{where}: the SSO session has expired or was never started: {login}"
    if isinstance(exc, bex.TokenRetrievalError):
        return f"{where}: the SSO token could not be refreshed ({_first_line(exc)}): {login}"
    if isinstance(exc, bex.CredentialRetrievalError):
        provider = str(exc.kwargs.get("provider", ""))
        detail = _first_line(exc.kwargs.get("error_msg", "")) or "no details"
        if provider == "custom-process":
            return (
                f"{where}: credential_process failed: {detail}: run that command yourself to see "
                "why, or fix credential_process in the profile"
            )
        return f"{where}: cannot get credentials from {provider or 'the provider'}: {detail}"
    if isinstance(exc, bex.RefreshWithMFAUnsupportedError):
        return f"{where}: the assumed role's session expired and needs a new MFA code: run again"
    if isinstance(exc, bex.PartialCredentialsError):
        return f"{where}: incomplete credentials ({_first_line(exc)}): set both key id and secret"
    if isinstance(exc, bex.InvalidConfigError | bex.UnknownCredentialError):
        return f"{where}: {_first_line(exc)}: fix the profile in the AWS config file"
    if isinstance(exc, bex.EndpointConnectionError | bex.ConnectionClosedError):
        return f"{where}: cannot reach the sign-in endpoint ({_first_line(exc)}): check the network"
    if isinstance(exc, bex.ClientError):
        operation = getattr(exc, "operation_name", "") or "sign-in"
        error = exc.response.get("Error", {})
        code = error.get("Code") or "Unknown"
        message = _first_line(error.get("Message") or "")
        if operation.startswith("AssumeRole"):
            todo = "check role_arn, the role's trust policy and the source credentials"
        elif operation in ("GetRoleCredentials", "GetRoleCredentialsRequest"):
            todo = f"check sso_account_id and sso_role_name, or {login}"
        else:
            todo = "check the profile's sign-in settings"
        return f"{where}: {operation} failed: {code}: {message}: {todo}"
    if isinstance(exc, OSError):  # credential_process not found, unreadable token file
        name = exc.filename if exc.filename is not None else ""
        return (
            f"{where}: cannot get credentials: {exc.strerror or type(exc).__name__}"
            f"{f' ({name})' if name else ''}: fix credential_process or the token file path"
        )
    return None


def describe_call_credential_error(exc: BaseException, client: Any) -> str | None:
    """For the service layer: one line when an APC call failed because its credentials could
    not be refreshed (an SSO session that expired mid-run, a role that can no longer be
    assumed, a credential_process that now fails); None for any other error."""
    import botocore.exceptions as bex

    if isinstance(exc, bex.ClientError):
        model = getattr(getattr(client, "meta", None), "service_model", None)
        operations = set(getattr(model, "operation_names", []) or [])
        if getattr(exc, "operation_name", None) in operations:
            return None  # APC's own answer, not sign-in
    origin = _CLIENT_ORIGINS.get(client)
    profile = profile_label(origin[0]) if origin else "default"
    return describe_credential_error(exc, profile)


def _first_line(value: object) -> str:
    lines = [line.strip() for line in str(value).splitlines() if line.strip()]
    return lines[0] if lines else ""


def _configure_credential_chain(session: Any, profile: str) -> None:
    """The AWS CLI's touches on botocore's chain: its JSON credential cache for assume-role and
    web identity (``~/.aws/cli/cache``), and an MFA prompt that fails cleanly without a
    terminal."""
    from botocore.credentials import JSONFileCache

    resolver = session.get_component("credential_provider")
    cache = JSONFileCache(os.path.expanduser(CLI_CACHE_DIR))
    for name in ("assume-role", "assume-role-with-web-identity"):
        provider = resolver.get_provider(name)
        if provider is not None:
            provider.cache = cache
    assume_role = resolver.get_provider("assume-role")
    if assume_role is not None and hasattr(assume_role, "_prompter"):
        assume_role._prompter = _mfa_prompter(profile)


def _mfa_prompter(profile: str) -> Any:
    def prompt(text: str) -> str:
        import getpass

        problem = f"AWS profile {profile!r} needs an MFA code (mfa_serial)"
        if not sys.stdin.isatty():
            raise ConfigError(
                f"{problem} and there is no terminal to ask for it: run from a terminal, or "
                "sign in with aws first (the AWS CLI's cached session is used)"
            )
        try:
            return getpass.getpass(text)
        except EOFError:
            raise ConfigError(f"{problem}: none was entered") from None

    return prompt


def make_client(
    *,
    region: str | None = None,
    profile: str | None = None,
    endpoint_url: str | None = None,
    retry_mode: str = "standard",
    max_attempts: int = 5,
    debug: bool = False,
    credentials: tuple[str, str] | None = None,
    max_pool_connections: int = 10,
    require_credentials: bool = False,
) -> Any:
    """Build a ``payment-cryptography`` client.

    ``credentials`` (access key id, secret) is for the embedded emulator only; normally the
    profile or environment supplies credentials through botocore's chain.
    With ``require_credentials`` the credential chain is resolved now (an SSO token read, a
    role assumed, a credential_process run), so a ceremony without usable credentials stops
    before it starts a journal or makes a call.
    Raises ConfigError for an unknown profile, a missing region or (with
    ``require_credentials``) missing or unusable credentials; InputError for bad options.
    """
    check_retry_options(retry_mode, max_attempts)
    if endpoint_url is not None:
        endpoint_url = check_endpoint_url(endpoint_url)
    import botocore.config
    import botocore.exceptions
    import botocore.session

    del debug  # logging is configured by the CLI (apckx.cli._output.setup_debug_logging)
    session = new_session(profile)
    name = profile or "default"
    try:
        session.get_scoped_config()  # an unknown profile fails here, not later
        name = profile_label(session)
        session.register_component(
            "data_loader", make_data_loader(session.get_config_variable("data_path"))
        )
        region_name = region or session.get_config_variable("region")
        if not region_name:
            raise ConfigError(
                f"no AWS region for profile {name!r}: pass --region, set AWS_DEFAULT_REGION, or "
                f"run aws configure set region REGION --profile {name}"
            )
        if credentials is not None:
            session.set_credentials(credentials[0], credentials[1])
        else:
            _configure_credential_chain(session, name)
        if credentials is None and require_credentials:
            resolved = session.get_credentials()
            if resolved is None:
                raise ConfigError(
                    f"no AWS credentials for profile {name!r}: run aws configure (or aws sso "
                    "login) for it, pass --profile, or set AWS_ACCESS_KEY_ID and "
                    "AWS_SECRET_ACCESS_KEY"
                )
            resolved.get_frozen_credentials()  # assume-role and SSO sign in here, not mid-run
    except botocore.exceptions.ProfileNotFound as exc:
        missing = exc.kwargs.get("profile", profile)
        raise ConfigError(
            f"AWS profile {missing!r} not found in the AWS config files: check --profile and "
            f"AWS_PROFILE, or run aws configure --profile {missing}"
        ) from None
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError, OSError) as exc:
        message = describe_credential_error(exc, name)
        if message is None:
            raise ConfigError(f"AWS profile {name!r}: {_first_line(exc)}") from None
        raise ConfigError(message) from None
    config = botocore.config.Config(
        retries={"mode": retry_mode, "total_max_attempts": max_attempts},
        max_pool_connections=max_pool_connections,
        user_agent_extra="apckx",
    )
    try:
        client = session.create_client(
            SERVICE_NAME, region_name=region_name, endpoint_url=endpoint_url, config=config
        )
    except botocore.exceptions.BotoCoreError as exc:
        raise ConfigError(f"cannot build the APC client: {_first_line(exc)}") from None
    seed_event_aliases(getattr(client.meta, "events", None))
    _log.debug(
        "client: region=%s endpoint=%s retry_mode=%s max_attempts=%d",
        region_name,
        client.meta.endpoint_url,
        retry_mode,
        max_attempts,
    )
    _CLIENT_ORIGINS[client] = (session, endpoint_url, config, region_name)
    from apckx._startup import end_startup

    end_startup()  # start-up is over (apckx._startup: the collector, the regex cache)
    return client


def make_data_client(control_client: Any) -> Any:
    """The ``payment-cryptography-data`` client from the session ``control_client`` was built
    with (:func:`make_client`): same credentials, region, retries and ``--endpoint-url`` (one
    emulator URL serves both planes; with none, botocore applies
    ``AWS_ENDPOINT_URL_PAYMENT_CRYPTOGRAPHY_DATA`` or the AWS endpoint)."""
    import botocore.exceptions

    try:
        origin = _CLIENT_ORIGINS.get(control_client)
    except TypeError:  # not weak-referenceable: certainly not one of ours
        origin = None
    if origin is None:
        raise ConfigError("the data-plane client needs a control-plane client from make_client")
    session, endpoint_url, config, region_name = origin
    try:
        client = session.create_client(
            DATA_SERVICE_NAME, region_name=region_name, endpoint_url=endpoint_url, config=config
        )
    except botocore.exceptions.BotoCoreError as exc:
        raise ConfigError(f"cannot build the APC data-plane client: {_first_line(exc)}") from None
    seed_event_aliases(getattr(client.meta, "events", None))
    _log.debug("data client: region=%s endpoint=%s", region_name, client.meta.endpoint_url)
    return client
