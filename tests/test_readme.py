"""The README's references stay inside the repository, so a clone has everything it points to."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\]\(([^)\s]+)\)")
# A file named in backticks: a path with a known documentation or source extension.
FILE_IN_BACKTICKS = re.compile(r"`([\w./-]+\.(?:md|yaml|yml|json|txt|py))`")


def references(text):
    for target in LINK.findall(text):
        if not re.match(r"^[a-z]+:|^#|^/", target):  # URLs, anchors and served paths are not files
            yield target.split("#", 1)[0]
    yield from (name for name in FILE_IN_BACKTICKS.findall(text) if "/" in name and not name.startswith("/"))


def test_every_file_the_readme_points_to_is_in_the_repository():
    text = (ROOT / "README.md").read_text()
    targets = list(references(text))
    assert "docs/API.md" in targets  # the API reference is the repository's own
    for target in targets:
        path = (ROOT / target).resolve()
        assert path.is_relative_to(ROOT), f"README points outside the repository: {target}"
        assert path.exists(), f"README points to a missing file: {target}"
