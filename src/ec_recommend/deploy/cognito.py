"""The Cognito user pool, its app client and groups, as ``provision_user_pool`` makes them."""

from __future__ import annotations

from typing import Any

from ec_recommend.deploy.names import logical_id
from ec_recommend.platform.auth.context import GROUPS
from ec_recommend.platform.auth.provision import (
    AUTH_FLOWS,
    GROUP_DESCRIPTIONS,
    PASSWORD_POLICY,
    READ_ATTRIBUTES,
    SELLER_ID_SCHEMA,
    WRITE_ATTRIBUTES,
)

USER_POOL = "UserPool"
USER_POOL_CLIENT = "UserPoolClient"


def cognito_resources() -> dict[str, Any]:
    resources: dict[str, Any] = {
        USER_POOL: {
            "Type": "AWS::Cognito::UserPool",
            # Accounts are data: keep the pool when the stack goes.
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                "UserPoolName": {"Ref": "UserPoolName"},
                "UsernameAttributes": ["email"],
                "AutoVerifiedAttributes": ["email"],
                "Policies": {"PasswordPolicy": PASSWORD_POLICY},
                "Schema": [SELLER_ID_SCHEMA],
                "AdminCreateUserConfig": {"AllowAdminCreateUserOnly": False},
            },
        },
        USER_POOL_CLIENT: {
            "Type": "AWS::Cognito::UserPoolClient",
            "Properties": {
                "UserPoolId": {"Ref": USER_POOL},
                "ClientName": {"Fn::Sub": "${UserPoolName}-app"},
                "GenerateSecret": False,
                "ExplicitAuthFlows": AUTH_FLOWS,
                "ReadAttributes": READ_ATTRIBUTES,
                "WriteAttributes": WRITE_ATTRIBUTES,
                "PreventUserExistenceErrors": "ENABLED",
            },
        },
    }
    for group in GROUPS:
        resources[logical_id("UserPoolGroup", group)] = {
            "Type": "AWS::Cognito::UserPoolGroup",
            "Properties": {
                "UserPoolId": {"Ref": USER_POOL},
                "GroupName": group,
                "Description": GROUP_DESCRIPTIONS[group],
            },
        }
    return resources


def cognito_outputs() -> dict[str, Any]:
    return {
        "UserPoolId": {"Description": "EC_COGNITO_USER_POOL_ID", "Value": {"Ref": USER_POOL}},
        "UserPoolClientId": {
            "Description": "EC_COGNITO_CLIENT_ID",
            "Value": {"Ref": USER_POOL_CLIENT},
        },
    }
