"""The files the twin's Envoy watches (`local.envoy`): a file-driven bootstrap, and swaps Envoy never sees half of."""

from __future__ import annotations

import json
from pathlib import Path

from local.envoy import bootstrap, discovery_response, write_atomically


def test_bootstrap_is_file_driven_and_admin_binds_loopback(tmp_path: Path) -> None:
    boot = bootstrap(node_id="n", admin_port=0, config_dir=tmp_path)
    assert boot["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"
    dynamic = boot["dynamic_resources"]
    assert dynamic["lds_config"]["path_config_source"]["path"] == str(tmp_path / "lds.json")
    assert dynamic["cds_config"]["path_config_source"]["path"] == str(tmp_path / "cds.json")
    assert "static_resources" not in boot


def test_write_atomically_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "cds.json"
    write_atomically(target, discovery_response([], "1"))
    write_atomically(target, discovery_response([{"name": "x"}], "2"))
    assert json.loads(target.read_text()) == {"version_info": "2", "resources": [{"name": "x"}]}
    assert [p.name for p in tmp_path.iterdir()] == ["cds.json"]
