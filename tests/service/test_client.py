"""make_client's session: the one-service data loader still finds, loads and calls APC."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path
from typing import Any

import botocore.exceptions
import botocore.loaders
import pytest

from apckx.emulator.pytest_plugin import EmulatorFixture
from apckx.errors import ConfigError
from apckx.service.apc import ApcService
from apckx.service.client import SERVICE_NAME, make_client, make_data_loader

MODEL_DIR = Path(botocore.loaders.Loader.BUILTIN_DATA_PATH) / SERVICE_NAME


@pytest.fixture
def test_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("AWS_PROFILE", "AWS_DATA_PATH", "AWS_ENDPOINT_URL_PAYMENT_CRYPTOGRAPHY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))


def _custom_model(root: Path, version: str = "2099-01-01") -> Path:
    """A copy of the installed model under ``root`` with a newer API version and one extra
    (documentation-only) marker, as a customer's ``AWS_DATA_PATH`` model would be."""
    (installed,) = [p for p in MODEL_DIR.iterdir() if (p / "service-2.json.gz").exists()]
    target = root / SERVICE_NAME / version
    target.mkdir(parents=True)
    with gzip.open(installed / "service-2.json.gz", "rb") as handle:
        model = json.loads(handle.read())
    model["metadata"]["apiVersion"] = version
    model["documentation"] = "custom model from AWS_DATA_PATH"
    (target / "service-2.json").write_text(json.dumps(model), encoding="utf-8")
    shutil.copy(installed / "endpoint-rule-set-1.json.gz", target)
    return target


def test_client_calls_the_emulator(apc_emulator: EmulatorFixture, test_credentials: None) -> None:
    client = make_client(
        region="us-east-1", endpoint_url=apc_emulator.url, require_credentials=True
    )
    apc = ApcService(client)
    key = apc.create_key(
        key_attributes={
            "KeyAlgorithm": "AES_256",
            "KeyClass": "SYMMETRIC_KEY",
            "KeyModesOfUse": {"Encrypt": True, "Decrypt": True, "Wrap": True, "Unwrap": True},
            "KeyUsage": "TR31_K0_KEY_ENCRYPTION_KEY",
        },
        exportable=True,
    )
    assert key["KeyState"] == "CREATE_COMPLETE"
    assert apc.get_key(str(key["KeyArn"]))["KeyArn"] == key["KeyArn"]
    assert client.meta.service_model.service_name == SERVICE_NAME
    assert client.meta.endpoint_url == apc_emulator.url
    client.close()


def test_loader_finds_services_by_name_without_listing_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loader = make_data_loader()

    def no_listing(*_args: object) -> list[str]:
        raise AssertionError("listed every service to load one")

    monkeypatch.setattr(loader, "list_available_services", no_listing)
    assert loader.load_service_model(SERVICE_NAME, "service-2")["metadata"]["serviceId"]
    # The services botocore's own credential providers ask for (issue 12: SSO and
    # assume-role failed with UnknownServiceError) load just the same.
    for service in ("sso", "sso-oidc", "sts"):
        assert loader.load_service_model(service, "service-2")["metadata"]["endpointPrefix"]


def test_loader_hides_no_service_and_loads_what_botocore_loads() -> None:
    loader = make_data_loader()
    stock = botocore.loaders.Loader()
    assert loader.list_available_services("service-2") == stock.list_available_services(
        "service-2"
    )
    assert {"sso", "sts", SERVICE_NAME} <= set(loader.list_available_services("service-2"))
    # The default search paths are kept: ~/.aws/models first, then botocore's own data.
    assert loader.search_paths[-1] == botocore.loaders.Loader.BUILTIN_DATA_PATH
    # Data loaded equals botocore's own loading, value for value.
    assert loader.load_data("endpoints") == stock.load_data("endpoints")
    for service in (SERVICE_NAME, "sts"):
        assert loader.load_service_model(service, "service-2") == stock.load_service_model(
            service, "service-2"
        )
    with pytest.raises(botocore.exceptions.UnknownServiceError, match="no-such-service"):
        loader.load_service_model("no-such-service", "service-2")


def test_aws_data_path_model_is_honoured(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, test_credentials: None
) -> None:
    _custom_model(tmp_path / "models")
    monkeypatch.setenv("AWS_DATA_PATH", f"{tmp_path / 'nothing'}:{tmp_path / 'models'}")
    client = make_client(region="us-east-1", endpoint_url="http://127.0.0.1:9")
    assert client.meta.service_model.api_version == "2099-01-01"
    assert client.meta.service_model.documentation == "custom model from AWS_DATA_PATH"


def test_profile_data_path_is_honoured(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, test_credentials: None
) -> None:
    _custom_model(tmp_path / "models", version="2098-06-30")
    (tmp_path / "config").write_text(
        f"[profile custom]\nregion = eu-west-1\ndata_path = {tmp_path / 'models'}\n",
        encoding="utf-8",
    )
    client = make_client(profile="custom", endpoint_url="http://127.0.0.1:9")
    assert client.meta.region_name == "eu-west-1"
    assert client.meta.service_model.api_version == "2098-06-30"


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_unknown_profile_is_one_config_error(
    how: str, monkeypatch: pytest.MonkeyPatch, test_credentials: None
) -> None:
    kwargs: dict[str, Any] = {"region": "us-east-1", "endpoint_url": "http://127.0.0.1:9"}
    if how == "argument":
        kwargs["profile"] = "nope"
    else:
        monkeypatch.setenv("AWS_PROFILE", "nope")
    with pytest.raises(ConfigError, match=r"AWS profile 'nope' not found"):
        make_client(**kwargs)


def test_unknown_profile_with_data_path_env_still_fails_early(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, test_credentials: None
) -> None:
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))
    with pytest.raises(ConfigError, match=r"AWS profile 'nope' not found"):
        make_client(region="us-east-1", profile="nope", require_credentials=True)


def test_large_data_files_are_read_back_from_a_private_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from apckx.service import client as client_module

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    source = tmp_path / "big.json"
    data = {"partitions": [{"services": {f"s{i}": {"endpoints": {}} for i in range(4000)}}]}
    source.write_text(json.dumps(data))
    assert source.stat().st_size >= client_module.CACHE_MIN_BYTES
    parsed = []
    real_loads = json.loads

    def counting_loads(text: str | bytes) -> object:
        parsed.append(1)
        return real_loads(text)

    monkeypatch.setattr(client_module.json, "loads", counting_loads)
    assert client_module.load_json_cached(str(source), open) == data  # parsed, then cached
    assert client_module.load_json_cached(str(source), open) == data  # from the cache
    assert len(parsed) == 1
    (cached,) = Path(client_module.data_cache_dir()).iterdir()
    assert cached.stat().st_mode & 0o777 == 0o600
    assert Path(client_module.data_cache_dir()).stat().st_mode & 0o777 == 0o700
    # A cache others may write is not read; a changed source is parsed afresh.
    cached.chmod(0o666)
    assert client_module.load_json_cached(str(source), open) == data
    assert len(parsed) == 2
    data["partitions"][0]["services"]["new"] = {}
    source.write_text(json.dumps(data))
    assert client_module.load_json_cached(str(source), open) == data
    assert len(parsed) == 3
