"""moto's backends for ``up``'s services, built before its server listens.

moto builds a service's backend (imports its models, maps its URLs) on the
first request for it; for Cognito, SNS, SQS and SES that was ~1 s of the
child's CPU inside ``up``'s provisioning, on the path to ready. Built before
listening, it runs while ``up`` imports its own modules on the other core
(``up`` starts this child first). Building a backend draws no random ids,
so the ids moto hands out after ``up`` seeds it are the same as before.
"""

from __future__ import annotations

from typing import Any

# the names moto's dispatcher keys its per-service apps by (moto.backend_index)
SERVICES = ("moto_api", "cognitoidp", "sns", "sqs", "ses")


def build_backends_first() -> None:
    """Have moto's dispatcher build ``SERVICES``' apps when it is made."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    made = DomainDispatcherApplication.__init__

    def init(self: Any, create_app: Any) -> None:
        made(self, create_app)
        for service in SERVICES:
            self.app_instances[service] = create_app(service)

    DomainDispatcherApplication.__init__ = init  # type: ignore[method-assign]
