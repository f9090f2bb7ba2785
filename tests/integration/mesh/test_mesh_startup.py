"""A broken mesh.yaml stops the process before anything starts, naming the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from ec_recommend import cli


def test_serve_refuses_a_mesh_file_with_a_typo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    mesh = tmp_path / "mesh.yaml"
    mesh.write_text(
        "virtual_services:\n  - name: product-service\n    circuit_braker:\n      threshold: 5\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("EC_MESH_FILE", str(mesh))
    assert cli.main(["serve", "product", "--data-dir", str(tmp_path / "data")]) == 2
    error = capsys.readouterr().err
    assert f"{mesh} line 3" in error
    assert "circuit_braker" in error
    assert not (tmp_path / "data").exists()  # nothing was started


def test_certs_init_writes_a_ca_and_a_certificate_per_service(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    certs = tmp_path / "certs"
    assert cli.main(["certs", "init", "--dir", str(certs)]) == 0
    for name in ("ca", "gateway", "user", "product", "order", "cart"):
        assert (certs / f"{name}.crt").exists()
    assert (certs / "product.key").stat().st_mode & 0o077 == 0  # private
    first = (certs / "product.crt").read_bytes()
    assert cli.main(["certs", "init", "--dir", str(certs)]) == 0
    assert (certs / "product.crt").read_bytes() == first  # kept
    assert "nothing" in capsys.readouterr().out
