"""The broker's warm-up names backends moto's dispatcher knows, and builds each once."""

from __future__ import annotations

from typing import Any

import pytest
from moto import backend_index
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

from ec_recommend.runtime import moto_warmup


def test_every_warmed_service_is_one_moto_dispatches_to() -> None:
    known = {name for name, _pattern in backend_index.backend_url_patterns} | {"moto_api"}
    assert set(moto_warmup.SERVICES) <= known


def test_the_dispatcher_has_the_apps_before_a_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        DomainDispatcherApplication, "__init__", DomainDispatcherApplication.__init__
    )
    built: list[str] = []

    def create_app(service: Any) -> str:
        built.append(service)
        return f"app of {service}"

    moto_warmup.build_backends_first()
    dispatcher = DomainDispatcherApplication(create_app)
    assert built == list(moto_warmup.SERVICES)
    assert dispatcher.app_instances["sqs"] == "app of sqs"
