"""The README tells the truth about the config: every key of Pulumi.yaml is in its table, with its default."""

from __future__ import annotations

import json
import re

from infra.config import PROJECT_DIR, project_schema


def test_readme_opens_with_the_two_commands() -> None:
    text = (PROJECT_DIR / "README.md").read_text()
    first_block = text.split("```bash", 1)[1].split("```", 1)[0]
    assert "make local" in first_block and "make test" in first_block


def test_readme_config_table_lists_every_key_with_its_default() -> None:
    text = (PROJECT_DIR / "README.md").read_text()
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `(\w+)` \| \w+ \| ([^|]+) \|", text, re.M)}
    for key, spec in project_schema().items():
        assert key in rows, f"README's config table lacks {key}"
        if "default" in spec and spec["default"] not in ("", None):
            default = (str(spec["default"]).lower() if isinstance(spec["default"], bool)
                       else json.dumps(spec["default"]) if isinstance(spec["default"], list) else str(spec["default"]))
            assert f"`{default}`" in rows[key], f"README shows {rows[key]!r} as the default of {key}"
