#!/usr/bin/env python3
"""bench/onelogin/fetch_baseline.py - the mock's own serving rate.

Fetches the same pages the worker fetches (same fields, limit and cursor
paging over one keep-alive connection, token included) without applying
them, and prints "users seconds users_per_second".
Usage: fetch_baseline.py PORT CLIENT_ID CLIENT_SECRET PAGE_SIZE [UPDATED_SINCE]
"""
import base64
import http.client
import json
import sys
import time
import urllib.parse

FIELDS = ("id,username,email,firstname,lastname,title,phone,company,department,"
          "status,state,updated_at,custom_attributes")


def main():
    port, cid, secret, limit = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    since = sys.argv[5] if len(sys.argv) > 5 else None
    conn = http.client.HTTPConnection("127.0.0.1", port)
    t0 = time.perf_counter()
    auth = base64.b64encode(("%s:%s" % (cid, secret)).encode()).decode()
    conn.request("POST", "/auth/oauth2/v2/token", body='{"grant_type":"client_credentials"}',
                 headers={"Authorization": "Basic " + auth, "Content-Type": "application/json"})
    token = json.loads(conn.getresponse().read())["access_token"]
    params = {"fields": FIELDS, "limit": limit}
    if since:
        params["updated_since"] = since
    users = 0
    while True:
        conn.request("GET", "/api/2/users?" + urllib.parse.urlencode(params),
                     headers={"Authorization": "Bearer " + token, "Accept": "application/json"})
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise SystemExit("HTTP %d: %s" % (resp.status, body[:200]))
        users += int(resp.getheader("Page-Items") or 0)
        cursor = resp.getheader("After-Cursor")
        if not cursor:
            break
        params["cursor"] = cursor
    secs = time.perf_counter() - t0
    print("%d %.3f %.0f" % (users, secs, users / secs if secs > 0 else 0))


if __name__ == "__main__":
    main()
