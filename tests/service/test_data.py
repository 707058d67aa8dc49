"""The data-plane client comes from the control-plane client's session (one factory)."""

from __future__ import annotations

import pytest

from apckx.errors import ConfigError
from apckx.service.apc import ApcService
from apckx.service.client import make_client, make_data_client
from apckx.service.data import ApcDataService, make_data_service


def test_data_client_shares_region_endpoint_and_credentials() -> None:
    control = make_client(
        region="eu-west-2", endpoint_url="http://127.0.0.1:9", credentials=("AKID", "SECRET"),
        max_attempts=2,
    )  # fmt: skip
    data = make_data_client(control)
    assert data.meta.service_model.service_name == "payment-cryptography-data"
    assert data.meta.region_name == "eu-west-2"
    assert data.meta.endpoint_url == "http://127.0.0.1:9"
    assert data.meta.config.retries["total_max_attempts"] == 2
    assert data._request_signer._credentials.access_key == "AKID"
    service = make_data_service(ApcService(control))
    assert isinstance(service, ApcDataService)
    assert service.calls == []


def test_data_client_needs_a_factory_client() -> None:
    with pytest.raises(ConfigError, match="control-plane client from make_client"):
        make_data_client(object())
