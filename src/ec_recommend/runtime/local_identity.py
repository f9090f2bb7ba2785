"""The local identity provider's limits: who may reach it, and whose tokens it takes.

``up`` signs tokens with moto's Cognito key, whose private half ships inside
the moto package: anyone who can reach such a gateway can forge any token,
an admin's included. So ``up`` listens on loopback only, unless the caller
says, with ``--insecure-auth``, that it understands this (and is warned on
every start).

Each data dir gets its own pool: a random tag kept in the data dir names the
pool (moto derives the pool's id from its name) and seeds moto's other ids
(app client, subjects), so two ``up`` runs never accept each other's
tokens, while one data dir keeps its ids from run to run.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
from pathlib import Path

log = logging.getLogger(__name__)

TAG_FILE = "local-identity"
INSECURE_FLAG = "--insecure-auth"
INSECURE_WARNING = (
    "INSECURE: this gateway listens on %s with the local identity provider, whose "
    "signing key is public (it ships with moto): anyone who can reach it can forge "
    "any token, an admin's included. Use it only on a network you trust."
)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name or a wildcard: reachable from elsewhere


def listen_refusal(host: str, *, insecure: bool) -> str | None:
    """Why ``up`` must not listen on ``host`` (None: it may)."""
    if is_loopback(host) or insecure:
        return None
    return (
        f"up signs tokens with moto's public key, so listening on {host} would let anyone "
        f"who can reach it forge an admin token; listen on 127.0.0.1, or pass "
        f"{INSECURE_FLAG} if you understand this"
    )


def warn_if_exposed(host: str) -> None:
    if not is_loopback(host):
        log.warning(INSECURE_WARNING, host)


def pool_tag(data_dir: Path) -> str:
    """This data dir's random tag, made on first use."""
    path = data_dir / TAG_FILE
    try:
        tag = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        tag = ""
    if len(tag) == 12 and all(c in "0123456789abcdef" for c in tag):
        return tag
    tag = secrets.token_hex(6)
    data_dir.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as out:
        out.write(tag + "\n")
    return tag


def pool_name(base: str, tag: str) -> str:
    return f"{base}-{tag}"


def moto_seed(tag: str) -> int:
    """The seed of moto's random ids for this data dir."""
    return int(tag, 16) % 2**31
