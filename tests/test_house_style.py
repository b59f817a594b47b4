"""The house style's size rule: no module of the package is over 400 lines."""

from __future__ import annotations

from pathlib import Path

import reports

_LIMIT = 400


def test_no_module_is_over_400_lines() -> None:
    package = Path(reports.__file__).parent
    too_long = {
        str(path.relative_to(package.parent)): n
        for path in sorted(package.rglob("*.py"))
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > _LIMIT
    }
    assert too_long == {}, f"modules over {_LIMIT} lines (split them by concept): {too_long}"
