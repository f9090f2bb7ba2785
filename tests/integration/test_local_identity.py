"""Each data dir has its own local pool identity, kept from run to run."""

from __future__ import annotations

import stat
from pathlib import Path

from ec_recommend.runtime.local_identity import TAG_FILE, pool_name, pool_tag


def test_a_data_dir_keeps_its_tag_and_another_gets_its_own(tmp_path: Path) -> None:
    first = pool_tag(tmp_path / "a")
    assert pool_tag(tmp_path / "a") == first
    assert pool_tag(tmp_path / "b") != first
    assert stat.S_IMODE((tmp_path / "a" / TAG_FILE).stat().st_mode) == 0o600
    assert pool_name("ec-recommend", first) == f"ec-recommend-{first}"


def test_a_damaged_tag_is_replaced(tmp_path: Path) -> None:
    (tmp_path / TAG_FILE).write_text("not hex\n")
    tag = pool_tag(tmp_path)
    assert len(tag) == 12 and tag != "not hex"
