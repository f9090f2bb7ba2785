"""AWS resources as code: a CloudFormation template generated from the settings.

``ec-recommend provision --emit cloudformation`` writes what ``provision``
creates by API calls (the topology of ``topology.yaml``, the Cognito pool of
the auth settings) plus what only a deployment needs: the SES sender
identity and an API Gateway whose authorizer is the project's Lambda
authorizer (``provision --emit authorizer-zip`` packages it), in front of
the gateway service. Both read the same constants, so they cannot drift.
"""

from ec_recommend.deploy.package import package_authorizer
from ec_recommend.deploy.template import build_template, render

__all__ = ["build_template", "package_authorizer", "render"]
