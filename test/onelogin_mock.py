#!/usr/bin/env python3
"""test/onelogin_mock.py - a mock of OneLogin's REST API for scim_provision.

Loopback only, ephemeral port, Python 3 standard library only.  It serves
what the background worker pulls, shaped like OneLogin (see
doc reference notes, section 1):

  POST /auth/oauth2/v2/token      client credentials by HTTP Basic, by the
                                  "client_id:..., client_secret:..." header or
                                  by form fields; flat token JSON
  GET  /api/2/users               bare JSON array; fields, limit, updated_since,
                                  cursor, sort (+id/-id; another field is
                                  422 UnprocessableEntityFieldError);
                                  After-Cursor/Before-Cursor,
                                  Total-Count/Total-Pages/Current-Page and
                                  X-RateLimit-* headers; without "fields" the
                                  title/department/company/custom_attributes
                                  are left out (catches a client that forgets)
  GET  /api/2/users/<id>          one user, 404 NotFoundError once deleted
  GET  /api/1/events              v1 envelope, event_type_id, since,
                                  after_cursor (pagination.after_cursor)
  GET  /auth/rate_limit           rate-limit status

and control endpoints for the tests (JSON bodies):

  POST /_mock/users     {"users": [{id, username, email, ...}, ...]}  upsert;
                        updated_at = now unless given
  POST /_mock/delete    {"ids": [...], "event": true}  delete, with a
                        user-deleted event (type 17) unless event is false
  POST /_mock/generate  {"count": N, "start_id": 1, "domain": "example.com",
                         "updated_at": ISO-8601 (default now), "spread_seconds": 0}
                        (updated_at of the k-th user: updated_at + k * spread / count)
  POST /_mock/touch     {"ids": [...], "set": {...}}  change and re-stamp
  POST /_mock/fault     {"kind": ..., "on": "users|user|events|token|any",
                         "count": 1, "skip": 0, "status": 500,
                         "retry_after": 2, "reset": 2, "delay": 30}
                        kinds: status, 429, garbage, truncate, cut, stall,
                        slow, unauthorized, echo (the status with a body
                        and Retry-After quoting the request's Authorization
                        header and the client credentials it carries)
  POST /_mock/on_page   {"page": 2, "delete": [ids], "insert": [users],
                         "event": true}  once, when a users list request
                        for that page arrives, change the list before the
                        page is cut from it (offset paging shifts under the
                        client, as OneLogin's does)
  POST /_mock/clear_faults, POST /_mock/expire_tokens, POST /_mock/config
                        {"page_cap": 100, "token_ttl": 36000,
                         "rate_limit": 5000, "rate_remaining": null}
  GET  /_mock/stats     counters;  GET /_mock/users  every user, full
  POST /_mock/shutdown

Usage: onelogin_mock.py --client-id ID --client-secret SECRET
                        [--port 0] [--port-file FILE] [--log FILE]
The chosen port is written to --port-file (and printed) once listening.
"""

import argparse
import base64
import bisect
import json
import os
import secrets
import sys
import threading
import time
import urllib.parse
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DEFAULT_FIELDS = [
    "id", "activated_at", "created_at", "email", "username", "firstname",
    "lastname", "phone", "state", "status", "updated_at", "external_id",
    "directory_id", "group_id", "last_login", "locked_until", "member_of",
]
ALL_FIELDS = DEFAULT_FIELDS + [
    "title", "department", "company", "comment", "custom_attributes",
    "role_ids", "manager_user_id", "samaccountname", "distinguished_name",
    "userprincipalname", "preferred_locale_code", "invalid_login_attempts",
    "password_changed_at", "invitation_sent_at", "trusted_idp_id", "manager_ad_id",
]
USER_LIST_PARAMS = {
    "limit", "page", "cursor", "fields", "sort", "created_since",
    "created_until", "updated_since", "updated_until", "last_login_since",
    "last_login_until", "firstname", "lastname", "email", "username",
    "samaccountname", "external_id", "directory_id", "user_ids", "app_id",
}
EVENT_PARAMS = {"event_type_id", "since", "until", "after_cursor",
                "before_cursor", "limit", "user_id", "client_id",
                "directory_id", "id", "resolution", "sort"}


def iso(ts):
    """Epoch seconds -> OneLogin's UTC ISO-8601 with milliseconds."""
    dt = datetime.fromtimestamp(ts, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (dt.microsecond // 1000)


def parse_iso(s):
    s = s.strip()
    if s.endswith("Z") or s.endswith("z"):
        s = s[:-1] + "+00:00"
    return datetime.fromisoformat(s).timestamp()


def b64(obj):
    return base64.b64encode(urllib.parse.urlencode(obj).encode()).decode()


def unb64(s):
    return dict(urllib.parse.parse_qsl(base64.b64decode(s.encode()).decode()))


class Store:
    """All mock state, guarded by one lock."""

    def __init__(self, client_id, client_secret):
        self.lock = threading.RLock()
        self.client_id = client_id
        self.client_secret = client_secret
        self.users = {}           # id -> full user dict (with "_ts")
        self.ids = []             # sorted ids
        self.by_updated = []      # sorted (ts, id)
        self.events = []          # sorted by id
        self.next_event_id = 1000
        self.tokens = {}          # token -> expiry epoch
        self.faults = []
        self.page_hooks = []      # {"page", "delete", "insert", "event"}
        self.last_ts = 0.0
        self.page_cap = 1000
        self.token_ttl = 36000
        self.rate_limit = 5000
        self.rate_remaining = None   # None: never runs out
        self.rate_reset = 600
        self.cache = {}           # (id, fields) -> bytes
        self.stats = {
            "requests": 0, "token_requests": 0, "tokens_minted": 0,
            "users_pages": 0, "users_served": 0, "user_gets": 0,
            "events_pages": 0, "faults_injected": 0, "unauthorized": 0,
            "last_users_query": None, "last_events_query": None,
            "updated_since_seen": [], "fields_seen": None, "user_agents": [],
        }

    # -- time --
    def stamp(self):
        now = round(time.time(), 3)
        if now <= self.last_ts:
            now = round(self.last_ts + 0.001, 3)
        self.last_ts = now
        return now

    # -- users --
    def _index_remove(self, uid):
        u = self.users.get(uid)
        if u is None:
            return
        i = bisect.bisect_left(self.by_updated, (u["_ts"], uid))
        if i < len(self.by_updated) and self.by_updated[i] == (u["_ts"], uid):
            del self.by_updated[i]

    def put_user(self, data, ts=None):
        uid = int(data["id"])
        existing = self.users.get(uid)
        if existing is None:
            u = {
                "id": uid, "username": None, "email": None, "firstname": None,
                "lastname": None, "title": None, "department": None,
                "company": None, "comment": "", "phone": None, "state": 1,
                "status": 1, "group_id": None, "role_ids": [],
                "directory_id": None, "external_id": None,
                "custom_attributes": {}, "member_of": None,
                "activated_at": None, "last_login": None,
                "locked_until": None, "invalid_login_attempts": 0,
                "manager_user_id": None, "samaccountname": None,
                "distinguished_name": None, "userprincipalname": None,
                "preferred_locale_code": None, "password_changed_at": None,
                "invitation_sent_at": None, "trusted_idp_id": None,
                "manager_ad_id": None,
            }
            created = True
        else:
            self._index_remove(uid)
            u = existing
            created = False
        for k, v in data.items():
            if k == "custom_attributes" and isinstance(v, dict):
                u["custom_attributes"] = dict(u.get("custom_attributes") or {})
                u["custom_attributes"].update(v)
            elif k not in ("id", "updated_at"):
                u[k] = v
        if "updated_at" in data:
            u["_ts"] = parse_iso(data["updated_at"])
        else:
            u["_ts"] = ts if ts is not None else self.stamp()
        u["updated_at"] = iso(u["_ts"])
        if created:
            u["_created"] = u["_ts"]
            u["created_at"] = u["updated_at"]
            bisect.insort(self.ids, uid)
        self.users[uid] = u
        bisect.insort(self.by_updated, (u["_ts"], uid))
        self.cache = {k: v for k, v in self.cache.items() if k[0] != uid} if len(self.cache) < 50000 else {}
        return created

    def delete_user(self, uid, event=True):
        u = self.users.get(uid)
        if u is None:
            return False
        self._index_remove(uid)
        del self.users[uid]
        i = bisect.bisect_left(self.ids, uid)
        if i < len(self.ids) and self.ids[i] == uid:
            del self.ids[i]
        if event:
            self.add_event(17, u)
        return True

    def add_event(self, type_id, u):
        ts = self.stamp()
        self.events.append({
            "id": self.next_event_id, "created_at": iso(ts), "_ts": ts,
            "event_type_id": type_id, "user_id": u["id"],
            "user_name": "%s %s" % (u.get("firstname") or "", u.get("lastname") or ""),
            "account_id": 1, "actor_user_id": 1, "actor_user_name": "Admin",
            "ipaddr": "127.0.0.1", "notes": None, "app_id": None,
        })
        self.next_event_id += 1

    def user_json(self, u, fields):
        key = (u["id"], fields)
        b = self.cache.get(key)
        if b is None:
            names = ALL_FIELDS if fields == "*" else fields.split(",")
            obj = {"id": u["id"]}
            for f in names:
                f = f.strip()
                if f and f in u and not f.startswith("_"):
                    obj[f] = u[f]
            b = json.dumps(obj, separators=(",", ":")).encode()
            self.cache[key] = b
        return b

    # -- faults --
    def take_fault(self, endpoint):
        for f in self.faults:
            if f["on"] not in ("any", endpoint):
                continue
            if f["skip"] > 0:
                f["skip"] -= 1
                continue
            f["count"] -= 1
            if f["count"] <= 0:
                self.faults.remove(f)
            self.stats["faults_injected"] += 1
            return f
        return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "onelogin-mock/1.0"

    def log_message(self, fmt, *args):
        log = self.server.logfile
        if log is not None:
            log.write("%s %s\n" % (time.strftime("%H:%M:%S"), fmt % args))
            log.flush()

    # -- helpers --
    @property
    def store(self):
        return self.server.store

    def send_body(self, status, body, ctype="application/json", headers=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        self.wfile.write(body)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def rate_headers(self):
        s = self.store
        rem = s.rate_limit - 1 if s.rate_remaining is None else s.rate_remaining
        if s.rate_remaining is not None and s.rate_remaining > 0:
            s.rate_remaining -= 1
        return {"X-RateLimit-Limit": s.rate_limit, "X-RateLimit-Remaining": max(rem, 0),
                "X-RateLimit-Reset": s.rate_reset}

    def apply_fault(self, fault, body, headers):
        """Answer according to an injected fault; True when answered."""
        kind = fault["kind"]
        if kind == "slow":
            time.sleep(fault.get("delay", 5))
            return False
        if kind == "status":
            st = int(fault.get("status", 500))
            self.send_body(st, {"statusCode": st, "name": "InternalServerError" if st >= 500 else "Error",
                                "message": "injected failure"}, headers=headers)
        elif kind == "429":
            h = dict(headers)
            if fault.get("retry_after") is not None:
                h["Retry-After"] = fault["retry_after"]
            if fault.get("reset") is not None:
                h["X-RateLimit-Reset"] = fault["reset"]
                h["X-RateLimit-Remaining"] = 0
            self.send_body(429, {"statusCode": 429, "name": "TooManyRequestsError",
                                 "message": "Too Many Requests"}, headers=h)
        elif kind == "echo":
            # a server that quotes the request back: the Authorization header
            # (Basic credentials on the token call, the bearer token later)
            auth = self.headers.get("Authorization") or ""
            creds = ""
            if auth.lower().startswith("basic "):
                try:
                    creds = base64.b64decode(auth[6:].strip()).decode()
                except Exception:
                    creds = ""
            st = int(fault.get("status", 500))
            text = "bad request from %s (%s) %s" % (creds, auth, self.path)
            h = dict(headers)
            h["X-Echo"] = creds
            if fault.get("retry_after") is not None:
                h["Retry-After"] = fault["retry_after"]
            self.send_body(st, {"statusCode": st, "name": "Error " + creds, "message": text,
                                "status": {"error": True, "code": st, "type": creds, "message": text},
                                "field": auth}, headers=h)
        elif kind == "unauthorized":
            self.send_body(401, {"statusCode": 401, "name": "UnauthorizedError", "message": "Unauthorized"})
        elif kind == "garbage":
            self.send_body(200, b"<html>this is not JSON {\"id\": ", headers=headers)
        elif kind == "truncate":
            self.send_body(200, body[: max(1, len(body) // 2)], headers=headers)
        elif kind in ("cut", "stall"):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for k, v in headers.items():
                self.send_header(k, str(v))
            self.end_headers()
            self.wfile.write(body[: max(1, len(body) // 2)])
            self.wfile.flush()
            if kind == "stall":
                deadline = time.time() + fault.get("delay", 60)
                while time.time() < deadline and not self.server.stopping:
                    time.sleep(0.05)
            self.close_connection = True
        else:
            return False
        return True

    def bearer_ok(self):
        auth = self.headers.get("Authorization") or ""
        scheme, _, tok = auth.partition(" ")
        if scheme.lower().rstrip(":") != "bearer":
            if auth.lower().startswith("bearer:"):
                tok = auth[7:]
            else:
                return False
        exp = self.store.tokens.get(tok.strip())
        return exp is not None and exp > time.time()

    def unauthorized(self):
        self.store.stats["unauthorized"] += 1
        self.send_body(401, {"statusCode": 401, "name": "UnauthorizedError", "message": "Unauthorized"})

    # -- dispatch --
    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def dispatch(self, method):
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        q = {k: v[-1] for k, v in query.items()}
        body = self.read_body()
        s = self.store
        if not path.startswith("/_mock/"):
            with s.lock:
                s.stats["requests"] += 1      # OneLogin API requests only
                ua = self.headers.get("User-Agent")
                if ua and ua not in s.stats["user_agents"]:
                    s.stats["user_agents"].append(ua)
        try:
            if path.startswith("/_mock/"):
                return self.control(method, path, q, body)
            if method == "POST" and path == "/auth/oauth2/v2/token":
                return self.token(body)
            if method == "GET" and path == "/api/2/users":
                return self.list_users(q)
            if method == "GET" and path.startswith("/api/2/users/"):
                return self.get_user(path[len("/api/2/users/"):], q)
            if method == "GET" and path == "/api/1/events":
                return self.list_events(q)
            if method == "GET" and path == "/auth/rate_limit":
                with s.lock:
                    h = self.rate_headers()
                return self.send_body(200, {"status": {"error": False, "code": 200, "type": "success",
                                                       "message": "Success"},
                                            "data": {k: int(v) for k, v in h.items()}})
            self.send_body(404, {"status": {"error": True, "code": 404, "type": "not found",
                                            "message": "No Route Exists"}})
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # -- OneLogin endpoints --
    def token(self, body):
        s = self.store
        auth = self.headers.get("Authorization") or ""
        cid = csec = None
        if auth.lower().startswith("basic "):
            try:
                cid, _, csec = base64.b64decode(auth[6:].strip()).decode().partition(":")
            except Exception:
                cid = csec = None
        elif "client_id:" in auth:
            parts = dict(p.strip().split(":", 1) for p in auth.split(",") if ":" in p)
            cid, csec = parts.get("client_id"), parts.get("client_secret")
        ctype = (self.headers.get("Content-Type") or "").lower()
        grant = None
        try:
            if "json" in ctype:
                grant = json.loads(body or b"{}").get("grant_type")
            else:
                form = dict(urllib.parse.parse_qsl(body.decode()))
                grant = form.get("grant_type")
                cid = cid or form.get("client_id")
                csec = csec or form.get("client_secret")
        except Exception:
            grant = None
        with s.lock:
            s.stats["token_requests"] += 1
            fault = s.take_fault("token")
        if fault and self.apply_fault(fault, b"{}", {}):
            return
        if grant != "client_credentials":
            return self.send_body(400, {"status": {"error": True, "code": 400, "type": "bad request",
                                                   "message": "grant_type is incorrect/absent"}})
        if cid != s.client_id or csec != s.client_secret:
            return self.send_body(401, {"status": {"error": True, "code": 401, "type": "Unauthorized",
                                                   "message": "Authentication Failure"}})
        tok = secrets.token_hex(32)
        with s.lock:
            s.tokens[tok] = time.time() + s.token_ttl
            s.stats["tokens_minted"] += 1
            ttl = s.token_ttl
        self.send_body(200, {"access_token": tok, "created_at": iso(time.time()), "expires_in": ttl,
                             "refresh_token": "", "token_type": "bearer", "account_id": 123456})

    def list_users(self, q):
        s = self.store
        unknown = [k for k in q if k not in USER_LIST_PARAMS and not k.startswith("custom_attributes.")]
        if unknown:
            return self.send_body(400, {"statusCode": 400, "name": "BadRequestError",
                                        "message": "query parameter(s) not allowed: " + ",".join(unknown)})
        if not self.bearer_ok():
            return self.unauthorized()
        params = dict(q)
        if params.get("cursor"):
            try:
                params.update(unb64(params["cursor"]))
            except Exception:
                return self.send_body(400, {"statusCode": 400, "name": "BadRequestError",
                                            "message": "invalid cursor"})
        try:
            limit = min(max(int(params.get("limit") or 50), 1), s.page_cap)
            page = max(int(params.get("page") or 1), 1)
            since = parse_iso(params["updated_since"]) if params.get("updated_since") else None
        except ValueError:
            return self.send_body(400, {"statusCode": 400, "name": "BadRequestError",
                                        "message": "invalid parameter"})
        sort = params.get("sort") or ""
        if sort not in ("", "+id", "-id", "id"):
            field = sort.lstrip("+-")
            return self.send_body(422, {"message": "Invalid sort field: " + field, "field": field,
                                        "name": "UnprocessableEntityFieldError", "statusCode": 422})
        fields = params.get("fields") or ""
        fields_key = ",".join(f.strip() for f in fields.split(",") if f.strip()) if fields else ",".join(DEFAULT_FIELDS)
        with s.lock:
            for hook in [h for h in s.page_hooks if h["page"] == page]:
                s.page_hooks.remove(hook)
                for i in hook.get("delete", []):
                    s.delete_user(int(i), hook.get("event", True))
                for u in hook.get("insert", []):
                    s.put_user(u)
                s.stats["page_hooks_fired"] = s.stats.get("page_hooks_fired", 0) + 1
            s.stats["last_users_query"] = dict(q)
            s.stats["fields_seen"] = fields or None
            if params.get("updated_since"):
                s.stats["updated_since_seen"].append(params["updated_since"])
                del s.stats["updated_since_seen"][:-20]
            if since is None:
                ids = s.ids
            else:
                i = bisect.bisect_right(s.by_updated, (since, float("inf")))
                ids = sorted(uid for _, uid in s.by_updated[i:])
            if sort == "-id":
                ids = ids[::-1]
            s.stats["last_sort"] = sort or None
            total = len(ids)
            pages = max((total + limit - 1) // limit, 1)
            chunk = ids[(page - 1) * limit: page * limit]
            body = b"[" + b",".join(s.user_json(s.users[uid], fields_key) for uid in chunk) + b"]"
            headers = {"Total-Count": total, "Total-Pages": pages, "Current-Page": page,
                       "Page-Items": len(chunk)}
            base = {"limit": limit}
            if params.get("updated_since"):
                base["updated_since"] = params["updated_since"]
            if page < pages:
                headers["After-Cursor"] = b64(dict(base, page=page + 1))
            if page > 1:
                headers["Before-Cursor"] = b64(dict(base, page=page - 1))
            headers.update(self.rate_headers())
            fault = s.take_fault("users")
            if not fault or fault["kind"] == "slow":
                s.stats["users_pages"] += 1
                s.stats["users_served"] += len(chunk)
        if fault and self.apply_fault(fault, body, headers):
            return
        self.send_body(200, body, headers=headers)

    def get_user(self, rest, q):
        s = self.store
        if not self.bearer_ok():
            return self.unauthorized()
        try:
            uid = int(rest)
        except ValueError:
            return self.send_body(400, {"statusCode": 400, "name": "BadRequestError", "message": "bad id"})
        with s.lock:
            s.stats["user_gets"] += 1
            fault = s.take_fault("user")
            u = s.users.get(uid)
            fields = q.get("fields")
            body = s.user_json(u, ",".join(f.strip() for f in fields.split(","))) if (u and fields) else \
                (s.user_json(u, "*") if u else None)
        if fault and self.apply_fault(fault, body or b"{}", {}):
            return
        if u is None:
            return self.send_body(404, {"statusCode": 404, "name": "NotFoundError",
                                        "message": "The resource with the given id could not be found"})
        self.send_body(200, body)

    def list_events(self, q):
        s = self.store
        unknown = [k for k in q if k not in EVENT_PARAMS]
        if unknown:
            return self.send_body(400, {"status": {"error": True, "code": 400, "type": "bad request",
                                                   "message": "unknown parameter " + ",".join(unknown)}})
        if not self.bearer_ok():
            return self.send_body(401, {"status": {"error": True, "code": 401, "type": "Unauthorized",
                                                   "message": "Authentication Failure"}})
        params = dict(q)
        if params.get("after_cursor"):
            try:
                params.update(unb64(params["after_cursor"]))
            except Exception:
                return self.send_body(400, {"status": {"error": True, "code": 400, "type": "bad request",
                                                       "message": "invalid cursor"}})
        types = {int(t) for t in params.get("event_type_id", "").split(",") if t.strip()}
        since = parse_iso(params["since"]) if params.get("since") else None
        limit = min(max(int(params.get("limit") or 50), 1), 1000)
        offset = int(params.get("offset") or 0)
        with s.lock:
            s.stats["last_events_query"] = dict(q)
            evs = [e for e in s.events
                   if (not types or e["event_type_id"] in types) and (since is None or e["_ts"] >= since)]
            chunk = evs[offset: offset + limit]
            data = [{k: v for k, v in e.items() if not k.startswith("_")} for e in chunk]
            after = None
            if offset + limit < len(evs):
                after = b64({"offset": offset + limit, "limit": limit,
                             "since": params.get("since") or "", "event_type_id": params.get("event_type_id", "")})
            body = json.dumps({"status": {"error": False, "code": 200, "type": "success", "message": "Success"},
                               "pagination": {"before_cursor": None, "after_cursor": after,
                                              "previous_link": None,
                                              "next_link": ("/api/1/events?after_cursor=" + after) if after else None},
                               "data": data}).encode()
            headers = self.rate_headers()
            fault = s.take_fault("events")
            if not fault:
                s.stats["events_pages"] += 1
        if fault and self.apply_fault(fault, body, headers):
            return
        self.send_body(200, body, headers=headers)

    # -- control --
    def control(self, method, path, q, body):
        s = self.store
        try:
            req = json.loads(body or b"{}")
        except ValueError:
            return self.send_body(400, {"error": "bad JSON"})
        name = path[len("/_mock/"):]
        with s.lock:
            if name == "stats":
                out = dict(s.stats)
                out["users"] = len(s.users)
                out["events"] = len(s.events)
                out["faults_pending"] = [dict(f) for f in s.faults]
                out["tokens_live"] = sum(1 for e in s.tokens.values() if e > time.time())
                return self.send_body(200, out)
            if name == "users" and method == "GET":
                return self.send_body(200, [{k: v for k, v in u.items() if not k.startswith("_")}
                                            for u in (s.users[i] for i in s.ids)])
            if name == "users":
                created = sum(1 for u in req.get("users", []) if s.put_user(u))
                return self.send_body(200, {"created": created, "users": len(s.users)})
            if name == "delete":
                n = sum(1 for i in req.get("ids", []) if s.delete_user(int(i), req.get("event", True)))
                return self.send_body(200, {"deleted": n})
            if name == "touch":
                for i in req.get("ids", []):
                    if int(i) in s.users:
                        s.put_user(dict(req.get("set", {}), id=int(i)))
                return self.send_body(200, {"touched": len(req.get("ids", []))})
            if name == "generate":
                n = int(req.get("count", 0))
                start = int(req.get("start_id", 1))
                dom = req.get("domain", "example.com")
                spread = float(req.get("spread_seconds", 0))
                if req.get("updated_at"):
                    base = round(parse_iso(req["updated_at"]), 3)
                else:
                    base = s.stamp()
                s.last_ts = max(s.last_ts, round(base + spread + 0.001, 3))
                for k in range(n):
                    uid = start + k
                    u = {
                        "id": uid, "username": "user%d@%s" % (uid, dom), "email": "user%d@%s" % (uid, dom),
                        "firstname": "First%d" % uid, "lastname": "Last%d" % uid, "title": "Engineer",
                        "department": "R&D", "company": "Example Corp", "phone": "+1555%07d" % uid,
                        "custom_attributes": {"usertype": "Regular"}, "status": 1, "state": 1,
                    }
                    # bulk path: no per-user stamping or cache invalidation
                    s.users.pop(uid, None)
                    full = {
                        "id": uid, "comment": "", "group_id": None, "role_ids": [], "directory_id": None,
                        "external_id": None, "member_of": None, "activated_at": None, "last_login": None,
                        "locked_until": None, "invalid_login_attempts": 0, "manager_user_id": None,
                        "samaccountname": None, "distinguished_name": None, "userprincipalname": None,
                        "preferred_locale_code": None, "password_changed_at": None,
                        "invitation_sent_at": None, "trusted_idp_id": None, "manager_ad_id": None,
                    }
                    full.update(u)
                    full["_ts"] = round(base + (k * spread / n if n else 0), 3)
                    full["_created"] = full["_ts"]
                    full["updated_at"] = full["created_at"] = iso(full["_ts"])
                    s.users[uid] = full
                s.ids = sorted(s.users)
                s.by_updated = sorted((u["_ts"], i) for i, u in s.users.items())
                s.cache = {}
                return self.send_body(200, {"users": len(s.users)})
            if name == "fault":
                f = {"kind": req.get("kind", "status"), "on": req.get("on", "users"),
                     "count": int(req.get("count", 1)), "skip": int(req.get("skip", 0))}
                for k in ("status", "retry_after", "reset", "delay"):
                    if k in req:
                        f[k] = req[k]
                s.faults.append(f)
                return self.send_body(200, {"faults": len(s.faults)})
            if name == "on_page":
                s.page_hooks.append({"page": int(req.get("page", 2)), "delete": req.get("delete", []),
                                     "insert": req.get("insert", []), "event": req.get("event", True)})
                return self.send_body(200, {"hooks": len(s.page_hooks)})
            if name == "clear_faults":
                s.faults = []
                return self.send_body(200, {"faults": 0})
            if name == "expire_tokens":
                s.tokens = {}
                return self.send_body(200, {"tokens": 0})
            if name == "config":
                for k in ("page_cap", "token_ttl", "rate_limit", "rate_remaining", "rate_reset"):
                    if k in req:
                        setattr(s, k, req[k])
                if "client_secret" in req:
                    s.client_secret = req["client_secret"]
                return self.send_body(200, {"ok": True})
            if name == "shutdown":
                self.send_body(200, {"ok": True})
                threading.Thread(target=self.server.shutdown, daemon=True).start()
                return None
        return self.send_body(404, {"error": "unknown control " + name})


def main():
    ap = argparse.ArgumentParser(description="Mock OneLogin API for scim_provision tests")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--client-id", required=True)
    ap.add_argument("--client-secret", required=True)
    ap.add_argument("--log")
    args = ap.parse_args()

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.store = Store(args.client_id, args.client_secret)
    server.stopping = False
    server.logfile = open(args.log, "a") if args.log else None
    port = server.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, args.port_file)
    print("onelogin mock listening on 127.0.0.1:%d" % port, flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.stopping = True
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
