"""The CloudFormation template says what the topology, the auth settings and routes.yaml say.

cfn-lint checks it against AWS's specifications in CI (.ci/deploy-checks);
tests/integration/deploy deploys it to moto and runs an order through it.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import re
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

from ec_recommend.cli import main
from ec_recommend.config import Config
from ec_recommend.consumers.email import PASSTHROUGH_TEMPLATE_CONTENT
from ec_recommend.deploy import build_template, render
from ec_recommend.deploy.api import HANDLER, NOT_PROXIED
from ec_recommend.edge.gateway.routes import load_routes
from ec_recommend.platform.events.topology import load_topology

ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = build_template(Config.from_env({}))
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]


def _of_type(kind: str) -> list[dict[str, Any]]:
    return [r["Properties"] for r in RESOURCES.values() if r["Type"] == kind]


def _sub(value: Any) -> str:
    return str(value["Fn::Sub"])


def test_every_queue_has_its_dlq_timeout_and_redrive() -> None:
    queues = {_sub(q["QueueName"]): q for q in _of_type("AWS::SQS::Queue")}
    for queue in load_topology().queues:
        made = queues["${EventsPrefix}" + queue.name]
        assert made["VisibilityTimeout"] == queue.visibility_timeout
        assert made["RedrivePolicy"]["maxReceiveCount"] == queue.max_receive_count
        dlq_id = made["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        assert _sub(RESOURCES[dlq_id]["Properties"]["QueueName"]) == "${EventsPrefix}" + queue.dlq


def test_every_route_is_a_raw_filtered_subscription() -> None:
    subscriptions = {
        (s["TopicArn"]["Ref"], s["Endpoint"]["Fn::GetAtt"][0]): s
        for s in _of_type("AWS::SNS::Subscription")
    }
    routes = load_topology().routes()
    assert len(subscriptions) == len(routes)
    for route in routes:
        (made,) = [
            s
            for (topic, queue), s in subscriptions.items()
            if _sub(RESOURCES[topic]["Properties"]["TopicName"]).endswith(route.topic)
            and _sub(RESOURCES[queue]["Properties"]["QueueName"]).endswith(route.queue)
        ]
        assert made["RawMessageDelivery"] is True
        assert made["FilterPolicy"] == route.filter_policy


def test_required_routes_go_through_the_lambda_authorizer() -> None:
    methods = _of_type("AWS::ApiGateway::Method")
    by_path: dict[str, set[str]] = {}
    for method in methods:
        uri = _sub(method["Integration"]["Uri"]).removeprefix("${GatewayOrigin}")
        by_path.setdefault(uri, set()).add(method["AuthorizationType"])
    for rule in load_routes().rules:
        if rule.path in NOT_PROXIED:
            assert rule.path not in by_path
            continue
        expected = {"CUSTOM"} if rule.auth == "required" else {"NONE"}
        assert by_path[rule.prefix] == expected, rule.path
        if rule.path.endswith("/*"):
            assert by_path[f"{rule.prefix}/{{proxy}}"] == expected, rule.path


def test_the_authorizer_is_the_projects_handler_on_the_images_python() -> None:
    (function,) = _of_type("AWS::Lambda::Function")
    module, _, name = function["Handler"].rpartition(".")
    assert function["Handler"] == HANDLER
    assert callable(getattr(importlib.import_module(module), name))
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    image = re.search(r"^ARG PYTHON_VERSION=(\S+)$", dockerfile, re.MULTILINE)
    assert image and function["Runtime"] == f"python{image.group(1)}"
    (authorizer,) = _of_type("AWS::ApiGateway::Authorizer")
    assert authorizer["IdentitySource"] == "method.request.header.Authorization"


def test_the_pool_groups_and_email_are_those_provision_makes() -> None:
    (pool,) = _of_type("AWS::Cognito::UserPool")
    assert [a["Name"] for a in pool["Schema"]] == ["seller_id"]
    groups = {g["GroupName"] for g in _of_type("AWS::Cognito::UserPoolGroup")}
    assert groups == {"customer", "seller", "admin"}
    (identity,) = _of_type("AWS::SES::EmailIdentity")
    assert identity["EmailIdentity"] == {"Ref": "EmailSender"}
    (template,) = _of_type("AWS::SES::Template")
    assert template["Template"] == PASSTHROUGH_TEMPLATE_CONTENT


def test_provision_emit_cloudformation_prints_the_template(monkeypatch: Any) -> None:
    for key in [k for k in os.environ if k.startswith("EC_")]:
        monkeypatch.delenv(key)  # the template's defaults come from the configuration
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["provision", "--emit", "cloudformation"]) == 0
    assert out.getvalue() == render(TEMPLATE)
    assert json.loads(out.getvalue())["AWSTemplateFormatVersion"] == "2010-09-09"


def test_an_unwritable_out_is_an_error_message_not_a_traceback(tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "missing" / "ec-recommend.json"
    assert main(["provision", "--emit", "cloudformation", "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("ec-recommend: ") and "Traceback" not in error
    assert not out.parent.exists()
