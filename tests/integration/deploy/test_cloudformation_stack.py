"""The generated CloudFormation template, deployed to moto, carries an order end to end.

``provision --emit cloudformation`` is deployed to moto's CloudFormation;
the system then runs against the stack's resources (names from its
outputs) and an order's events must reach every subscriber. moto's
CloudFormation creates the SNS topics, SQS queues with their redrive
policies, the Lambda authorizer (from the zip that ``--emit authorizer-zip``
builds), its role and permission, and the API Gateway resources, methods and
deployment; it skips the types it does not implement: SNS subscriptions, SQS
queue policies, the Cognito pool, client and groups, the SES identity and the
API Gateway authorizer. The test creates those from the template's own
properties (``_complete``), so what runs is still what the template says.
Then ``provision`` and ``provision_user_pool``, run against the stack, must
find nothing to create or change: the template and ``provision`` cannot drift.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

import aiohttp
import pytest

from ec_recommend.client import Client
from ec_recommend.config import AuthConfig, Config, EventsConfig
from ec_recommend.consumers.email import store_template
from ec_recommend.deploy import build_template, package_authorizer
from ec_recommend.deploy.template import lambda_python
from ec_recommend.platform.auth.cognito import cognito_client
from ec_recommend.platform.auth.provision import provision_user_pool
from ec_recommend.platform.events.aws import aws_client
from ec_recommend.platform.events.provision import provision
from ec_recommend.platform.events.topology import load_topology
from ec_recommend.runtime.local_aws import LocalAws
from ec_recommend.runtime.registry import CONSUMERS, SERVICES
from tests.conftest import wait_for

pytestmark = pytest.mark.asyncio

PASSWORD = "Passw0rd-stack"
# The resource types moto's CloudFormation skips, which _complete creates.
NOT_IN_MOTO = {
    "AWS::SNS::Subscription",
    "AWS::SQS::QueuePolicy",
    "AWS::Cognito::UserPool",
    "AWS::Cognito::UserPoolClient",
    "AWS::Cognito::UserPoolGroup",
    "AWS::SES::EmailIdentity",
    "AWS::SES::Template",
    "AWS::ApiGateway::Authorizer",
}


@dataclass
class Stack:
    """A deployed stack: its parameters, outputs and what each logical id resolves to."""

    template: dict[str, Any]
    region: str
    parameters: dict[str, str]
    outputs: dict[str, str]
    refs: dict[str, str] = field(default_factory=dict)
    arns: dict[str, str] = field(default_factory=dict)

    def resolve(self, value: Any) -> Any:
        """The template's intrinsic functions, as far as the skipped resources use them."""
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if "Ref" in value:
            name = value["Ref"]
            return self.parameters.get(name) or self.refs[name]
        if "Fn::GetAtt" in value:
            name, attribute = value["Fn::GetAtt"]
            assert attribute == "Arn", attribute
            return self.arns[name]
        if "Fn::Sub" in value:
            return re.sub(r"\$\{([^}]+)\}", lambda m: self._sub(m.group(1)), value["Fn::Sub"])
        return {key: self.resolve(item) for key, item in value.items()}

    def _sub(self, name: str) -> str:
        if name in self.parameters:
            return self.parameters[name]
        if name.endswith(".Arn"):
            return self.arns[name.removesuffix(".Arn")]
        return str(
            {"AWS::Region": self.region, "AWS::Partition": "aws"}.get(name) or self.refs[name]
        )

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {
            name: resource["Properties"]
            for name, resource in self.template["Resources"].items()
            if resource["Type"] == kind
        }


async def _deploy(
    aws: LocalAws, events: EventsConfig, template: dict[str, Any], code: Path
) -> Stack:
    parameters = {
        "EventsPrefix": events.name_prefix,
        "UserPoolName": f"{events.name_prefix}pool",
        "EmailSender": "no-reply@stack.example.com",
        "GatewayOrigin": "http://127.0.0.1:8080",
        "AuthorizerCodeBucket": f"{events.name_prefix}code",
        "AuthorizerCodeKey": "authorizer.zip",
    }
    async with aws_client("s3", events) as s3, aws_client("cloudformation", events) as cfn:
        await s3.create_bucket(
            Bucket=parameters["AuthorizerCodeBucket"],
            CreateBucketConfiguration={"LocationConstraint": events.region},
        )
        await s3.put_object(
            Bucket=parameters["AuthorizerCodeBucket"], Key="authorizer.zip", Body=code
        )
        name = f"{events.name_prefix}stack"
        await cfn.create_stack(
            StackName=name,
            TemplateBody=json.dumps(template),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            Capabilities=["CAPABILITY_IAM"],
        )

        async def complete() -> dict[str, Any] | None:
            (stack,) = (await cfn.describe_stacks(StackName=name))["Stacks"]
            assert not stack["StackStatus"].endswith(("FAILED", "ROLLBACK_COMPLETE"))
            return stack if stack["StackStatus"] == "CREATE_COMPLETE" else None

        await wait_for(complete, timeout=60, interval=0.2)
        (described,) = (await cfn.describe_stacks(StackName=name))["Stacks"]
        created = (await cfn.list_stack_resources(StackName=name))["StackResourceSummaries"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}
    kinds = {r["ResourceType"] for r in created if r["ResourceType"]}
    assert kinds.isdisjoint(NOT_IN_MOTO), "moto creates more now: shrink NOT_IN_MOTO"
    stack = Stack(template, events.region, parameters, outputs)
    stack.refs.update({k: v for k, v in outputs.items() if k.startswith(("Topic", "Queue", "Dlq"))})
    stack.refs["RestApi"] = outputs["RestApiId"]
    stack.arns["AuthorizerFunction"] = outputs["AuthorizerFunctionArn"]
    return stack


async def _complete(stack: Stack, events: EventsConfig, auth: AuthConfig) -> None:
    """Create what moto's CloudFormation skipped, from the template's properties."""
    async with aws_client("sqs", events) as sqs:
        for name in stack.of_type("AWS::SQS::Queue"):
            url = _local_url(stack.refs[name], events)
            stack.refs[name] = url
            attributes = await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
            stack.arns[name] = attributes["Attributes"]["QueueArn"]
        for properties in stack.of_type("AWS::SQS::QueuePolicy").values():
            policy = json.dumps(stack.resolve(properties["PolicyDocument"]))
            for url in stack.resolve(properties["Queues"]):
                await sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": policy})
    async with aws_client("sns", events) as sns:
        for properties in stack.of_type("AWS::SNS::Subscription").values():
            await sns.subscribe(
                TopicArn=stack.resolve(properties["TopicArn"]),
                Protocol=properties["Protocol"],
                Endpoint=stack.resolve(properties["Endpoint"]),
                Attributes={
                    "RawMessageDelivery": str(properties["RawMessageDelivery"]).lower(),
                    "FilterPolicyScope": properties["FilterPolicyScope"],
                    "FilterPolicy": json.dumps(properties["FilterPolicy"]),
                },
                ReturnSubscriptionArn=True,
            )
    async with cognito_client(auth) as cognito:
        (pool,) = stack.of_type("AWS::Cognito::UserPool").values()
        created = await cognito.create_user_pool(
            PoolName=stack.resolve(pool["UserPoolName"]),
            **{k: v for k, v in pool.items() if k != "UserPoolName"},
        )
        stack.refs["UserPool"] = created["UserPool"]["Id"]
        (app,) = stack.of_type("AWS::Cognito::UserPoolClient").values()
        made = await cognito.create_user_pool_client(**stack.resolve(app))
        stack.refs["UserPoolClient"] = made["UserPoolClient"]["ClientId"]
        for group in stack.of_type("AWS::Cognito::UserPoolGroup").values():
            await cognito.create_group(**stack.resolve(group))
    async with aws_client("ses", events) as ses:
        for identity in stack.of_type("AWS::SES::EmailIdentity").values():
            await ses.verify_email_identity(EmailAddress=stack.resolve(identity["EmailIdentity"]))
        for template in stack.of_type("AWS::SES::Template").values():
            await ses.create_template(Template=template["Template"])
    async with aws_client("apigateway", events) as api:
        (authorizer,) = stack.of_type("AWS::ApiGateway::Authorizer").values()
        resolved = stack.resolve(authorizer)
        await api.create_authorizer(
            restApiId=resolved["RestApiId"],
            name=resolved["Name"],
            type=resolved["Type"],
            identitySource=resolved["IdentitySource"],
            authorizerUri=resolved["AuthorizerUri"],
            authorizerResultTtlInSeconds=resolved["AuthorizerResultTtlInSeconds"],
        )


def _local_url(url: str, events: EventsConfig) -> str:
    """moto reports AWS's queue URLs; the same queue on the local endpoint."""
    return f"{events.endpoint_url}/{url.split('/', 3)[3]}"


@asynccontextmanager
async def _serving(
    aws: LocalAws, events: EventsConfig, stack: Stack, data_dir: Path, log: IO[bytes]
) -> AsyncIterator[dict[str, Any]]:
    """Every service, consumer and the gateway in one ``serve`` process on the stack."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EC_", "AWS_"))}
    env.update(
        {
            "EC_AWS_ENDPOINT_URL": aws.endpoint_url,
            "EC_AWS_REGION": events.region,
            "EC_EVENTS_PREFIX": stack.parameters["EventsPrefix"],
            "EC_COGNITO_ENDPOINT_URL": aws.endpoint_url,
            "EC_COGNITO_REGION": events.region,
            "EC_COGNITO_USER_POOL_ID": stack.refs["UserPool"],
            "EC_COGNITO_CLIENT_ID": stack.refs["UserPoolClient"],
            "EC_EMAIL_SENDER": stack.parameters["EmailSender"],
            "EC_GATEWAY_PORT": "0",
            "EC_CONSUMER_WAIT_SECONDS": "1",
            "EC_RELAY_INTERVAL": "0.05",
            "EC_LOG_LEVEL": "WARNING",
        }
    )
    names = list(dict.fromkeys([*SERVICES, *CONSUMERS, "gateway"]))
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ec_recommend.cli",
        "serve",
        *names,
        "--data-dir",
        str(data_dir),
        stdout=asyncio.subprocess.PIPE,
        stderr=log,
        env=env,
    )
    assert child.stdout is not None
    try:
        line = await asyncio.wait_for(child.stdout.readline(), 90)
        assert line, f"serve exited with {await child.wait()}; see {log.name}"
        yield json.loads(line)
    finally:
        if child.returncode is None:
            child.send_signal(signal.SIGTERM)
            await asyncio.wait_for(child.wait(), 30)


async def _processed(metrics_url: str) -> dict[str, float]:
    """queue -> messages handled successfully, from the process's /metrics."""
    async with aiohttp.ClientSession() as session, session.get(metrics_url) as response:
        text = await response.text()
    counts: dict[str, float] = {}
    for match in re.finditer(r"^queue_message_processed_total\{(.*)\} (\S+)$", text, re.M):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
        if labels.get("status") == "success":
            queue = labels["queue"]
            counts[queue] = counts.get(queue, 0.0) + float(match.group(2))
    return counts


async def test_the_stack_carries_an_order_to_every_subscriber(
    tmp_path: Path, local_aws: LocalAws
) -> None:
    events = replace(
        EventsConfig(enabled=True, endpoint_url=local_aws.endpoint_url, region=local_aws.region),
        name_prefix=f"cfn{uuid.uuid4().hex[:6]}-",
    )
    auth = AuthConfig(region=local_aws.region, endpoint_url=local_aws.endpoint_url)
    template = build_template(Config())
    code = tmp_path / "authorizer.zip"
    # The package without its third-party wheels: moto stores the code, it does not run it.
    package_authorizer(code, lambda_python(), dependencies=False)

    stack = await _deploy(local_aws, events, template, code.read_bytes())
    await _complete(stack, events, auth)

    topology = load_topology()
    report = await provision(events, topology)
    assert (report.created, report.updated) == ([], []), "the template and provision differ"
    pool = await provision_user_pool(replace(auth, pool_name=stack.parameters["UserPoolName"]))
    async with aws_client("ses", events) as ses:
        assert not await store_template(ses), "the template and provision differ (SES template)"
    assert (pool.user_pool_id, pool.client_id) == (
        stack.refs["UserPool"],
        stack.refs["UserPoolClient"],
    )

    with (tmp_path / "serve.log").open("wb") as log:
        async with _serving(local_aws, events, stack, tmp_path / "data", log) as ready:
            gateway = ready["gateway_url"]
            async with Client(gateway) as seller, Client(gateway) as customer:
                tag = uuid.uuid4().hex[:8]
                await seller.signup(f"seller-{tag}@example.com", PASSWORD, role="seller")
                await seller.login(f"seller-{tag}@example.com", PASSWORD)
                product = await seller.create_product(f"Stack lamp {tag}", 3000, 5)
                await customer.signup(f"customer-{tag}@example.com", PASSWORD)
                await customer.login(f"customer-{tag}@example.com", PASSWORD)
                order = await customer.create_order(items=[(product["id"], 2)])
                await customer.pay(order["id"], "tok_visa")
                assert (await customer.get_order(order["id"]))["status"] == "PAID"

            # order.paid went topic -> filtered, raw subscription -> queue -> consumer
            # for every queue of the topology that takes it.
            takers = {q.name for q in topology.queues if "order.paid" in q.events}

            async def every_taker_handled_it() -> bool:
                handled = await _processed(ready["metrics_url"])
                return all(handled.get(queue, 0) >= 1 for queue in takers)

            await wait_for(every_taker_handled_it, timeout=60, interval=0.2)
