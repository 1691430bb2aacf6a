"""pgxn_meta.py - a validator of PGXN META.json files (Meta Spec 1.0.0).

No network and nothing outside the Python standard library: the rules of the
spec (https://pgxn.org/meta/spec.txt) written out as checks.  validate(doc,
root) returns a list of error strings, empty when the document is valid;
root, when given, is the distribution's top directory, and the files named
in provides must exist there.  Used by test/meta/validate_meta.py.
"""
import os
import re

LICENSES = {
    "agpl_3", "apache_1_1", "apache_2_0", "artistic_1", "artistic_2", "bsd",
    "freebsd", "gfdl_1_2", "gfdl_1_3", "gpl_1", "gpl_2", "gpl_3", "lgpl_2_1",
    "lgpl_3_0", "mit", "mozilla_1_0", "mozilla_1_1", "openssl", "perl_5",
    "postgresql", "qpl_1_0", "ssleay", "sun", "zlib", "open_source",
    "restricted", "unrestricted", "unknown",
}
REQUIRED = ("name", "version", "abstract", "maintainer", "license", "provides", "meta-spec")
OPTIONAL = ("description", "generated_by", "tags", "no_index", "prereqs",
            "release_status", "resources")
PHASES = ("configure", "build", "test", "runtime", "develop")
RELATIONSHIPS = ("requires", "recommends", "suggests", "conflicts")
RELEASE_STATUS = ("stable", "testing", "unstable")

_NUM = r"(?:0|[1-9][0-9]*)"
_PRE = r"(?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)"
SEMVER = re.compile(r"^%s\.%s\.%s(?:-%s(?:\.%s)*)?(?:\+[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*)?$"
                    % (_NUM, _NUM, _NUM, _PRE, _PRE))
RANGE_PART = re.compile(r"^(?:(?:==|!=|<=|>=|<|>)\s*)?(.+)$")
TERM = re.compile(r"^[^/\\\s\x00-\x1f\x7f]{2,}$")
URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s]+$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def is_custom(key):
    return isinstance(key, str) and len(key) > 2 and key[:2] in ("x_", "X_")


def is_semver(v):
    return isinstance(v, str) and SEMVER.match(v) is not None


def is_version_range(v):
    if v == 0 or v == "0":
        return True
    if not isinstance(v, str) or not v.strip():
        return False
    for part in v.split(","):
        m = RANGE_PART.match(part.strip())
        if not m or not is_semver(m.group(1).strip()):
            return False
    return True


def is_path(p):
    return (isinstance(p, str) and p != "" and not p.startswith("/") and "\\" not in p
            and ".." not in p.split("/"))


def _nonempty_str(v):
    return isinstance(v, str) and v.strip() != ""


def _unknown_keys(obj, known, where, errors):
    for k in obj:
        if k not in known and not is_custom(k):
            errors.append("%s: unknown key %r (custom keys start with x_)" % (where, k))


def _check_license(lic, errors):
    if isinstance(lic, str):
        if lic not in LICENSES:
            errors.append("license: %r is not one of the spec's license strings" % lic)
    elif isinstance(lic, list):
        if not lic:
            errors.append("license: empty list")
        for item in lic:
            if item not in LICENSES:
                errors.append("license: %r is not one of the spec's license strings" % (item,))
    elif isinstance(lic, dict):
        if not lic:
            errors.append("license: empty object")
        for name, url in lic.items():
            if not isinstance(url, str) or not URI.match(url):
                errors.append("license: %r must map to a URI" % name)
    else:
        errors.append("license: must be a string, a list or an object")


def _check_provides(provides, root, errors):
    if not isinstance(provides, dict) or not provides:
        errors.append("provides: must be a non-empty object")
        return
    for ext, spec in provides.items():
        where = "provides.%s" % ext
        if not TERM.match(ext):
            errors.append("%s: extension name is not a Term" % where)
        if not isinstance(spec, dict):
            errors.append("%s: must be an object" % where)
            continue
        _unknown_keys(spec, ("file", "version", "abstract", "docfile", "docpath"), where, errors)
        for key in ("file", "version"):
            if key not in spec:
                errors.append("%s: missing required key %r" % (where, key))
        if "version" in spec and not is_semver(spec["version"]):
            errors.append("%s.version: %r is not a semantic version" % (where, spec["version"]))
        if "abstract" in spec and not _nonempty_str(spec["abstract"]):
            errors.append("%s.abstract: must be a non-empty string" % where)
        for key in ("file", "docfile"):
            if key in spec:
                if not is_path(spec[key]):
                    errors.append("%s.%s: %r is not a relative unix path" % (where, key, spec[key]))
                elif root is not None and not os.path.isfile(os.path.join(root, spec[key])):
                    errors.append("%s.%s: %s does not exist in the distribution" % (where, key, spec[key]))


def _check_prereqs(prereqs, errors):
    if not isinstance(prereqs, dict) or not prereqs:
        errors.append("prereqs: must be a non-empty object")
        return
    _unknown_keys(prereqs, PHASES, "prereqs", errors)
    for phase, rels in prereqs.items():
        if is_custom(phase):
            continue
        if not isinstance(rels, dict) or not rels:
            errors.append("prereqs.%s: must be a non-empty object" % phase)
            continue
        _unknown_keys(rels, RELATIONSHIPS, "prereqs.%s" % phase, errors)
        for rel, reqs in rels.items():
            if is_custom(rel):
                continue
            where = "prereqs.%s.%s" % (phase, rel)
            if not isinstance(reqs, dict) or not reqs:
                errors.append("%s: must be a non-empty object" % where)
                continue
            for name, rng in reqs.items():
                if not TERM.match(name):
                    errors.append("%s: %r is not a Term" % (where, name))
                if not is_version_range(rng):
                    errors.append("%s.%s: %r is not a version range" % (where, name, rng))


def _check_resources(res, errors):
    if not isinstance(res, dict) or not res:
        errors.append("resources: must be a non-empty object")
        return
    _unknown_keys(res, ("homepage", "bugtracker", "repository"), "resources", errors)
    if "homepage" in res and not (isinstance(res["homepage"], str) and URI.match(res["homepage"])):
        errors.append("resources.homepage: must be a URI")
    bt = res.get("bugtracker")
    if bt is not None:
        if not isinstance(bt, dict) or not bt:
            errors.append("resources.bugtracker: must be a non-empty object")
        else:
            _unknown_keys(bt, ("web", "mailto"), "resources.bugtracker", errors)
            if "web" in bt and not (isinstance(bt["web"], str) and URI.match(bt["web"])):
                errors.append("resources.bugtracker.web: must be a URI")
            if "mailto" in bt and not (isinstance(bt["mailto"], str) and EMAIL.match(bt["mailto"])):
                errors.append("resources.bugtracker.mailto: must be an email address")
    repo = res.get("repository")
    if repo is not None:
        if not isinstance(repo, dict) or not repo:
            errors.append("resources.repository: must be a non-empty object")
        else:
            _unknown_keys(repo, ("url", "web", "type"), "resources.repository", errors)
            for key in ("url", "web"):
                if key in repo and not (isinstance(repo[key], str) and URI.match(repo[key])):
                    errors.append("resources.repository.%s: must be a URI" % key)
            if "type" in repo and not (isinstance(repo["type"], str) and re.match(r"^[a-z]+$", repo["type"])):
                errors.append("resources.repository.type: must be a lower-case word such as git")


def validate(doc, root=None):
    errors = []
    if not isinstance(doc, dict):
        return ["the document must be a JSON object"]
    for key in REQUIRED:
        if key not in doc:
            errors.append("missing required key %r" % key)
    _unknown_keys(doc, REQUIRED + OPTIONAL, "META", errors)

    if "name" in doc and not (isinstance(doc["name"], str) and TERM.match(doc["name"])):
        errors.append("name: must be a Term (2+ characters, no slash, backslash, space or control character)")
    if "version" in doc and not is_semver(doc["version"]):
        errors.append("version: %r is not a semantic version (X.Y.Z)" % (doc["version"],))
    for key in ("abstract", "description", "generated_by"):
        if key in doc and not _nonempty_str(doc[key]):
            errors.append("%s: must be a non-empty string" % key)
    if "maintainer" in doc:
        m = doc["maintainer"]
        if isinstance(m, list):
            if not m or not all(_nonempty_str(x) for x in m):
                errors.append("maintainer: must be a non-empty list of non-empty strings")
        elif not _nonempty_str(m):
            errors.append("maintainer: must be a string or a list of strings")
    if "license" in doc:
        _check_license(doc["license"], errors)
    if "provides" in doc:
        _check_provides(doc["provides"], root, errors)
    if "meta-spec" in doc:
        ms = doc["meta-spec"]
        if not isinstance(ms, dict) or "version" not in ms:
            errors.append("meta-spec: must be an object with a version")
        else:
            _unknown_keys(ms, ("version", "url"), "meta-spec", errors)
            if ms["version"] != "1.0.0":
                errors.append("meta-spec.version: %r is not 1.0.0" % (ms["version"],))
            if "url" in ms and not (isinstance(ms["url"], str) and URI.match(ms["url"])):
                errors.append("meta-spec.url: must be a URI")
    if "prereqs" in doc:
        _check_prereqs(doc["prereqs"], errors)
    if "resources" in doc:
        _check_resources(doc["resources"], errors)
    if "release_status" in doc and doc["release_status"] not in RELEASE_STATUS:
        errors.append("release_status: must be one of %s" % ", ".join(RELEASE_STATUS))
    if "tags" in doc:
        t = doc["tags"]
        if not isinstance(t, list) or not t or not all(
                isinstance(x, str) and 1 <= len(x) <= 255 for x in t):
            errors.append("tags: must be a non-empty list of strings of 1 to 255 characters")
    if "no_index" in doc:
        ni = doc["no_index"]
        if not isinstance(ni, dict) or not ni:
            errors.append("no_index: must be a non-empty object")
        else:
            _unknown_keys(ni, ("file", "directory"), "no_index", errors)
            for key in ("file", "directory"):
                v = ni.get(key)
                if v is not None and not (isinstance(v, str) or (
                        isinstance(v, list) and all(isinstance(x, str) for x in v))):
                    errors.append("no_index.%s: must be a string or a list of strings" % key)
    return errors
