"""Authentication: Cognito accounts, token verification, the Lambda authorizer.

The gateway and the Lambda authorizer share one ``TokenVerifier``; the
``/auth/*`` handlers use ``CognitoAccounts``; ``ec-recommend up`` and
``ec-recommend provision`` call ``provision_user_pool``.
"""

from ec_recommend.platform.auth.context import AuthContext

__all__ = ["AuthContext"]
