#!/usr/bin/env python3
"""docs_links.py - every relative link of README.md, CHANGELOG.md,
deploy/README.md and doc/*.md names a file or directory of the tree (the
README's move into doc/ must leave no link behind).  Output is TAP."""
import glob
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, Tap  # noqa: E402

tap = Tap()
files = ["README.md", "CHANGELOG.md", "deploy/README.md"] + sorted(
    os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "doc", "*.md")))
link = re.compile(r"\]\(([^)\s]+)\)")
for rel in files:
    path = os.path.join(ROOT, rel)
    if not os.path.exists(path):
        continue
    with open(path, encoding="utf-8") as f:
        text = re.sub(r"```.*?```", "", f.read(), flags=re.S)
    broken = []
    for target in link.findall(text):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        target = target.split("#", 1)[0]
        if not os.path.exists(os.path.normpath(os.path.join(os.path.dirname(path), target))):
            broken.append(target)
    tap.ok(not broken, "%s: every relative link resolves" % rel, broken)
tap.done()
