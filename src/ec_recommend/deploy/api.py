"""API Gateway (REST API) in front of the gateway service, with the Lambda authorizer.

Resources and methods follow ``routes.yaml``: a ``/prefix/*`` rule becomes the
prefix's resource and a ``{proxy+}`` under it, each method it lists proxied
over HTTP to the same path on the gateway (``GatewayOrigin``, e.g. the
internal load balancer of the Kubernetes gateway Service). Routes with
``auth: required`` go through the authorizer (a REQUEST authorizer on the
Authorization header, so a request without a token never reaches the
gateway); the others pass as they are and the gateway reads a token if
there is one. The gateway checks every token again: API Gateway is the first
gate, not the only one.
"""

from __future__ import annotations

from typing import Any

from ec_recommend.deploy.cognito import USER_POOL, USER_POOL_CLIENT
from ec_recommend.deploy.names import logical_id
from ec_recommend.edge.gateway.routes import RouteRule, RouteTable

REST_API = "RestApi"
AUTHORIZER = "Authorizer"
AUTHORIZER_FUNCTION = "AuthorizerFunction"
AUTHORIZER_ROLE = "AuthorizerRole"
DEPLOYMENT = "RestApiDeployment"
STAGE = "v1"
HANDLER = "ec_recommend.platform.auth.lambda_authorizer.handler"
# A REST API cannot carry a WebSocket upgrade: clients open /api/v1/ws on
# the gateway's load balancer directly (docs/deployment.md).
NOT_PROXIED = frozenset({"/api/v1/ws"})


def api_resources(routes: RouteTable, python: str) -> dict[str, Any]:
    resources: dict[str, Any] = {
        REST_API: {
            "Type": "AWS::ApiGateway::RestApi",
            "Properties": {
                "Name": {"Fn::Sub": "${AWS::StackName}-api"},
                "Description": "ec-recommend REST API in front of the gateway service",
                "EndpointConfiguration": {"Types": ["REGIONAL"]},
            },
        },
        **_authorizer(python),
    }
    paths: dict[str, str] = {}  # resource path -> logical id
    methods: list[str] = []
    for rule in routes.rules:
        if rule.path in NOT_PROXIED:
            continue
        targets = (
            [rule.prefix, f"{rule.prefix}/{{proxy+}}"] if rule.path.endswith("/*") else [rule.path]
        )
        for path in targets:
            resource = _resource(path, paths, resources)
            for method in sorted(rule.methods):
                method_id = logical_id("Method", f"{method}-{path}")
                resources[method_id] = _method(rule, method, path, resource)
                methods.append(method_id)
    resources[DEPLOYMENT] = {
        "Type": "AWS::ApiGateway::Deployment",
        "DependsOn": methods,
        "Properties": {"RestApiId": {"Ref": REST_API}, "StageName": STAGE},
    }
    return resources


def api_outputs() -> dict[str, Any]:
    return {
        "ApiUrl": {
            "Description": "Base URL of the REST API (clients call this)",
            "Value": {
                "Fn::Sub": f"https://${{{REST_API}}}.execute-api.${{AWS::Region}}"
                f".${{AWS::URLSuffix}}/{STAGE}"
            },
        },
        "RestApiId": {"Description": "API Gateway REST API id", "Value": {"Ref": REST_API}},
        "AuthorizerFunctionArn": {
            "Description": "The Lambda authorizer",
            "Value": {"Fn::GetAtt": [AUTHORIZER_FUNCTION, "Arn"]},
        },
    }


def _resource(path: str, paths: dict[str, str], resources: dict[str, Any]) -> str:
    """The logical id of ``path``'s resource, creating it and its parents."""
    if path in paths:
        return paths[path]
    parent_path, _, part = path.rpartition("/")
    parent: dict[str, Any] = (
        {"Fn::GetAtt": [REST_API, "RootResourceId"]}
        if not parent_path
        else {"Ref": _resource(parent_path, paths, resources)}
    )
    resource_id = logical_id("Resource", path.replace("{proxy+}", "proxy"))
    resources[resource_id] = {
        "Type": "AWS::ApiGateway::Resource",
        "Properties": {"RestApiId": {"Ref": REST_API}, "ParentId": parent, "PathPart": part},
    }
    paths[path] = resource_id
    return resource_id


def _method(rule: RouteRule, method: str, path: str, resource: str) -> dict[str, Any]:
    proxy = path.endswith("{proxy+}")
    uri_path = path.replace("{proxy+}", "{proxy}")
    properties: dict[str, Any] = {
        "RestApiId": {"Ref": REST_API},
        "ResourceId": {"Ref": resource},
        "HttpMethod": method,
        "AuthorizationType": "NONE",
        "Integration": {
            "Type": "HTTP_PROXY",
            "IntegrationHttpMethod": method,
            "Uri": {"Fn::Sub": f"${{GatewayOrigin}}{uri_path}"},
            "PassthroughBehavior": "WHEN_NO_MATCH",
        },
    }
    if rule.auth == "required":
        properties["AuthorizationType"] = "CUSTOM"
        properties["AuthorizerId"] = {"Ref": AUTHORIZER}
    if proxy:
        properties["RequestParameters"] = {"method.request.path.proxy": True}
        properties["Integration"]["RequestParameters"] = {
            "integration.request.path.proxy": "method.request.path.proxy"
        }
    return {"Type": "AWS::ApiGateway::Method", "Properties": properties}


def _authorizer(python: str) -> dict[str, Any]:
    return {
        AUTHORIZER_ROLE: {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                },
                "ManagedPolicyArns": [
                    {
                        "Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/"
                        "AWSLambdaBasicExecutionRole"
                    }
                ],
            },
        },
        AUTHORIZER_FUNCTION: {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Description": "ec-recommend token check (platform/auth/lambda_authorizer.py)",
                "Runtime": f"python{python}",
                "Handler": HANDLER,
                "Code": {
                    "S3Bucket": {"Ref": "AuthorizerCodeBucket"},
                    "S3Key": {"Ref": "AuthorizerCodeKey"},
                },
                "Role": {"Fn::GetAtt": [AUTHORIZER_ROLE, "Arn"]},
                "MemorySize": 256,
                "Timeout": 10,
                "Environment": {
                    "Variables": {
                        "EC_PROFILE": "production",
                        "EC_COGNITO_REGION": {"Ref": "AWS::Region"},
                        "EC_COGNITO_USER_POOL_ID": {"Ref": USER_POOL},
                        "EC_COGNITO_CLIENT_ID": {"Ref": USER_POOL_CLIENT},
                    }
                },
            },
        },
        "AuthorizerPermission": {
            "Type": "AWS::Lambda::Permission",
            "Properties": {
                "Action": "lambda:InvokeFunction",
                "FunctionName": {"Fn::GetAtt": [AUTHORIZER_FUNCTION, "Arn"]},
                "Principal": "apigateway.amazonaws.com",
                "SourceArn": {
                    "Fn::Sub": f"arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}"
                    f":${{AWS::AccountId}}:${{{REST_API}}}/authorizers/*"
                },
            },
        },
        AUTHORIZER: {
            "Type": "AWS::ApiGateway::Authorizer",
            "Properties": {
                "Name": "ec-recommend-token",
                "RestApiId": {"Ref": REST_API},
                "Type": "REQUEST",
                "IdentitySource": "method.request.header.Authorization",
                "AuthorizerResultTtlInSeconds": 300,
                "AuthorizerUri": {
                    "Fn::Sub": f"arn:${{AWS::Partition}}:apigateway:${{AWS::Region}}:lambda:path"
                    f"/2015-03-31/functions/${{{AUTHORIZER_FUNCTION}.Arn}}/invocations"
                },
            },
        },
    }
