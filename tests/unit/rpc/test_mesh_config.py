"""mesh.yaml: the seed's shape, defaults for unnamed services, errors with line numbers."""

from __future__ import annotations

import pytest

from ec_recommend.config import ConfigError
from ec_recommend.platform.rpc.mesh import RETRY_ON, load_mesh, parse_mesh

SEED_SHAPE = """\
mesh:
  name: ec-recommend-mesh

virtual_services:
  - name: user-service
    protocol: grpc
    retry_policy:
      max_retries: 3
      retry_on:
        - server-error
        - gateway-error
      retry_timeout: 5s
    timeout: 10s

  - name: product-service
    protocol: grpc
    circuit_breaker:
      threshold: 5
      timeout: 30s
    timeout: 5s
"""


def test_seed_shape_is_read_as_written() -> None:
    mesh = parse_mesh(SEED_SHAPE)
    user = mesh.policy("user")
    assert user.timeout == 10.0
    assert user.retry.max_retries == 3
    assert user.retry.retry_timeout == 5.0
    assert {"INTERNAL", "UNAVAILABLE", "DEADLINE_EXCEEDED"} <= user.retry.retry_on
    product = mesh.policy("product")
    assert (product.breaker.threshold, product.breaker.timeout, product.timeout) == (5, 30.0, 5.0)


def test_services_not_named_get_the_defaults() -> None:
    mesh = parse_mesh(SEED_SHAPE + "defaults:\n  timeout: 2500ms\n")
    assert mesh.policy("cart").timeout == 2.5
    assert mesh.policy("cart").name == "cart"
    # a named service inherits what it does not override
    assert mesh.policy("product").retry == mesh.defaults.retry


def test_unavailable_is_always_retryable() -> None:
    mesh = parse_mesh(
        "virtual_services:\n  - name: x\n    retry_policy:\n      retry_on: [internal]\n"
    )
    assert mesh.policy("x").retry.retry_on == {"INTERNAL", "UNAVAILABLE"}


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        (SEED_SHAPE.replace("retry_policy:", "retry_polcy:"), 7, "unknown key 'retry_polcy'"),
        (SEED_SHAPE.replace("threshold: 5", "threshold: five"), 18, "expected an integer"),
        (SEED_SHAPE.replace("timeout: 30s", "timeout: 30 parsecs"), 19, "duration"),
        (SEED_SHAPE.replace("- gateway-error", "- gateway-eror"), 11, "gateway-eror"),
        (SEED_SHAPE.replace("threshold: 5", "threshold: 0"), 18, "must be >= 1"),
        (
            SEED_SHAPE.replace("protocol: grpc\n    circuit", "protocol: http\n    circuit"),
            16,
            "only grpc",
        ),
        ("virtual_services:\n  - protocol: grpc\n", 2, "missing 'name'"),
        ("virtual_services:\n  - name: a\n  - name: a-service\n", 3, "listed twice"),
    ],
)
def test_mistakes_name_the_line(text: str, line: int, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_mesh(text, source="mesh.yaml")
    message = str(caught.value)
    assert f"mesh.yaml line {line}:" in message
    assert words in message


def test_packaged_mesh_file_is_valid_and_explicit_about_idempotency() -> None:
    mesh = load_mesh()
    product = mesh.policy("product")
    assert product.is_idempotent("GetProduct", has_key=False)
    assert product.is_idempotent("ReserveStock", has_key=False)  # per reservation id
    assert not product.is_idempotent("CreateProduct", has_key=True)
    assert not product.is_idempotent("UpdateStock", has_key=False)  # applies a delta
    order = mesh.policy("order")
    assert not order.is_idempotent("CreateOrder", has_key=False)
    assert order.is_idempotent("CreateOrder", has_key=True)
    assert product.callers_of("ReserveStock") == {"order"}
    assert product.callers_of("CommitStock") == {"order"}
    assert product.callers_of("GetProduct") is None


def test_packaged_mesh_file_keeps_the_seeds_values() -> None:
    """The seed's section 6.1 numbers; a change to the packaged file must be deliberate."""
    mesh = load_mesh()
    user = mesh.policy("user")
    assert user.retry.max_retries == 3
    assert user.retry.retry_on == RETRY_ON["server-error"] | RETRY_ON["gateway-error"]
    assert user.retry.retry_timeout == 5.0
    assert user.timeout == 10.0
    product = mesh.policy("product")
    assert product.breaker.threshold == 5
    assert product.breaker.timeout == 30.0
    assert product.timeout == 5.0
