"""common.py - what the meta tests read from the tree: the Makefile's
EXTVERSION and EXTENSION, the extensions' control files, and a small TAP
writer.  Shared by validate_meta.py and versions.py."""
import glob
import os
import re
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def makefile_var(name):
    """The first word of a plain NAME = value line of the Makefile: the
    version, or the main extension when EXTENSION lists several."""
    with open(os.path.join(ROOT, "Makefile"), encoding="utf-8") as f:
        for line in f:
            m = re.match(r"^%s\s*[:?]?=\s*(\S+)" % re.escape(name), line)
            if m:
                return m.group(1)
    return None


def control_files():
    """{extension name: {key: value}} for every *.control file at the top."""
    result = {}
    for path in sorted(glob.glob(os.path.join(ROOT, "*.control"))):
        values = {}
        with open(path, encoding="utf-8") as f:
            for line in f:
                m = re.match(r"^\s*([a-z_]+)\s*=\s*'?(.*?)'?\s*$", line)
                if m and not line.lstrip().startswith("#"):
                    values[m.group(1)] = m.group(2)
        result[os.path.basename(path)[:-len(".control")]] = values
    return result


def control_requires(values):
    return [r.strip() for r in values.get("requires", "").split(",") if r.strip()]


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, name, diag=None):
        self.n += 1
        print("%sok %d - %s" % ("" if cond else "not ", self.n, name))
        if not cond:
            self.failed += 1
            for line in (diag if isinstance(diag, list) else [diag] if diag else []):
                print("#   %s" % line)
        return cond

    def done(self):
        print("1..%d" % self.n)
        sys.exit(1 if self.failed else 0)
