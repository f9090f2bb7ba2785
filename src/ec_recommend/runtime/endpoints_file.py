"""``<data-dir>/endpoints.json``: where a running ``up`` put everything.

``up`` writes it once ready and removes it when it stops; the other commands
(``dlq``, ``provision``, ``serve`` of a gateway or a consumer) read it when no
AWS endpoint is configured, so they work next to a running ``up`` whose local
AWS listens on a port chosen at start: from their own data dir, else from the
default one (``.ec-data``) of the current directory, so a process with data of
its own still finds the ``up`` started here.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from ec_recommend.config import Config, ConfigError, Endpoint, StorageConfig

log = logging.getLogger(__name__)

FILE_NAME = "endpoints.json"


def endpoints_path(data_dir: Path) -> Path:
    return data_dir / FILE_NAME


def write_endpoints(data_dir: Path, endpoints: dict[str, Any]) -> Path:
    """Written aside and renamed, so a reader never sees half a file."""
    path = endpoints_path(data_dir)
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(endpoints, indent=2), encoding="utf-8")
    partial.replace(path)
    return path


def read_endpoints(data_dir: Path) -> dict[str, Any] | None:
    """The running ``up``'s endpoints, or None when there is none (or it is unreadable)."""
    try:
        loaded = json.loads(endpoints_path(data_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


def with_running_up(config: Config) -> Config:
    """``config`` pointed at the local AWS and the services of the ``up`` running here.

    Only in the local profile and only when nothing is configured: a set
    ``EC_AWS_ENDPOINT_URL`` or Cognito pool always wins.
    """
    if config.profile != "local" or config.events.endpoint_url or config.auth.configured:
        return config
    places = dict.fromkeys([config.storage.data_dir, StorageConfig.data_dir])
    found = next((f for f in map(read_endpoints, places) if f and f.get("aws_endpoint_url")), None)
    if found is None:
        return config
    endpoint = str(found["aws_endpoint_url"])
    region = str(found.get("region") or config.events.region)
    log.info("using the local AWS (%s) and services of the up running here", endpoint)
    events = replace(config.events, enabled=True, endpoint_url=endpoint, region=region)
    auth = replace(
        config.auth,
        endpoint_url=config.auth.endpoint_url or endpoint,
        region=region,
        user_pool_id=str(found.get("cognito_user_pool_id") or ""),
        client_id=str(found.get("cognito_client_id") or ""),
    )
    # up's services, for those this process is not told where to find
    services = found.get("services")
    dialled: dict[str, tuple[Endpoint, ...]] = {}
    for name, address in (services if isinstance(services, dict) else {}).items():
        if name not in config.rpc.endpoints and (dial := _endpoint(address)) is not None:
            dialled[name] = (dial,)
    rpc = replace(config.rpc, endpoints={**dialled, **config.rpc.endpoints})
    return replace(config, events=events, auth=auth, rpc=rpc)


def _endpoint(address: object) -> Endpoint | None:
    try:
        return Endpoint.parse(str(address), key="endpoints.json")
    except ConfigError:
        return None
