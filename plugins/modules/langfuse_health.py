#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmops.devbox developers
# Apache License 2.0 (see galaxy.yml), which is compatible with the GNU General Public License version 3.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: langfuse_health
short_description: Wait until a Langfuse server reports healthy and ready
version_added: 0.1.0
description:
  - Polls C(GET <url>/api/public/health) and C(GET <url>/api/public/ready) of a Langfuse web
    server until both answer HTTP 200 with a JSON C(status) of V(OK), or until O(timeout)
    seconds have passed, like M(ansible.builtin.wait_for) does for ports.
  - With O(check_database=true) the health probe adds C(?failIfDatabaseUnavailable=true), so
    Langfuse also checks its Postgres connection.
  - A probe that is refused, times out, answers another status, or answers malformed JSON
    counts as "not yet healthy"; the last one seen is reported when the wait times out.
  - Only reads; never reports a change.
author:
  - llmops.devbox developers (!UNKNOWN)
extends_documentation_fragment:
  - llmops.devbox.langfuse_url
  - llmops.devbox.http_client
  - llmops.devbox.poll
options:
  timeout:
    default: 300
  interval:
    default: 3
  check_database:
    description:
      - Ask the health endpoint to fail while the database is unavailable
        (C(?failIfDatabaseUnavailable=true)).
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: Runs the same read-only probes in check mode.
  diff_mode:
    support: none
    description: Nothing is changed, so there is nothing to diff.
notes:
  - When the wait times out, check C(docker compose ps) in the Langfuse project directory
    (for example C(/opt/langfuse)), C(docker logs langfuse-web), and that C(NEXTAUTH_URL) and
    C(DATABASE_URL) in the stack's environment are right.
seealso:
  - module: ansible.builtin.wait_for
  - module: ansible.builtin.uri
"""

EXAMPLES = r"""
- name: Wait for Langfuse (and its database) to come up
  llmops.devbox.langfuse_health:
    url: http://127.0.0.1:3000
    timeout: 600

- name: Only check the web process, poll every second
  llmops.devbox.langfuse_health:
    url: https://langfuse.example.internal
    check_database: false
    interval: 1
  register: __langfuse_health

- name: Show the running version
  ansible.builtin.debug:
    msg: "Langfuse {{ __langfuse_health.version }} healthy after {{ __langfuse_health.elapsed }}s"
"""

RETURN = r"""
version:
  description: Version reported by the health endpoint (empty when it reports none).
  returned: success
  type: str
  sample: 4.3.0
elapsed:
  description: Seconds spent waiting (also returned on failure).
  returned: always
  type: float
  sample: 12.41
status:
  description: The C(status) field of the health answer.
  returned: success
  type: str
  sample: OK
url:
  description: The base URL that was probed.
  returned: always
  type: str
  sample: http://127.0.0.1:3000
attempts:
  description: Number of polls made.
  returned: always
  type: int
  sample: 4
last_status:
  description: HTTP status of the last failing probe, null when no HTTP answer came at all.
  returned: failure
  type: int
  sample: 503
last_body:
  description: First 500 characters of the last failing probe's body.
  returned: failure
  type: str
  sample: '{"status":"Database not available"}'
last_error:
  description: Connection error of the last failing probe, null when an HTTP answer came.
  returned: failure
  type: str
  sample: "GET http://127.0.0.1:3000/api/public/health failed: connection refused"
"""

# Ansible requires the documentation blocks before any import, hence the E402 waivers.
from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.llmops.devbox.plugins.module_utils._http import (  # noqa: E402
    HttpError,
    http_args,
    request,
)
from ansible_collections.llmops.devbox.plugins.module_utils._langfuse_api import url_args  # noqa: E402
from ansible_collections.llmops.devbox.plugins.module_utils._poll import (  # noqa: E402
    poll,
    poll_args,
    poll_args_problem,
    request_budget,
)

BODY_LIMIT = 500
HINT = ("Check: 'docker compose ps' in the Langfuse project directory (e.g. /opt/langfuse); "
        "'docker logs langfuse-web'; that NEXTAUTH_URL and DATABASE_URL in its environment are "
        "right; and that {url} is reachable from this host.")


class NotReady(Exception):
    """One probe did not see a healthy answer."""

    def __init__(self, what, status=None, body=None, error=None):
        super().__init__(what)
        self.what = what
        self.status = status
        self.body = body
        self.error = error


def probe(endpoint, timeout, validate_certs):
    """GET endpoint and return its JSON when it is 200 + {"status": "OK"}; NotReady otherwise."""
    try:
        resp = request(endpoint, timeout=timeout, validate_certs=validate_certs)
    except HttpError as exc:
        raise NotReady(str(exc), error=str(exc)) from None
    body = resp.text()[:BODY_LIMIT]
    if resp.status != 200:
        raise NotReady(f"GET {endpoint} answered HTTP {resp.status}: {body}", resp.status, body)
    try:
        data = resp.json()
    except ValueError:
        raise NotReady(f"GET {endpoint} answered HTTP 200 with malformed JSON: {body}",
                       resp.status, body) from None
    if not isinstance(data, dict) or data.get("status") != "OK":
        raise NotReady(f"GET {endpoint} answered HTTP 200 but status is not OK: {body}",
                       resp.status, body)
    return data


def main():
    module = AnsibleModule(
        argument_spec=dict(
            **url_args(),
            **poll_args(timeout=300, interval=3),
            **http_args(),
            check_database=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    base = p["url"].rstrip("/")
    if not base.startswith(("http://", "https://")):
        module.fail_json(msg=f"url must start with http:// or https://, got {base!r}", url=base,
                         elapsed=0.0, attempts=0)
    problem = poll_args_problem(p)
    if problem:
        module.fail_json(msg=problem, url=base, elapsed=0.0, attempts=0)
    health_url = base + "/api/public/health"
    if p["check_database"]:
        health_url += "?failIfDatabaseUnavailable=true"
    ready_url = base + "/api/public/ready"

    def attempt(remaining):
        """The health answer once both probes are fine, else the NotReady of the one that was not."""
        timeout = request_budget(p["request_timeout"], remaining)
        try:
            health = probe(health_url, timeout, p["validate_certs"])
            probe(ready_url, timeout, p["validate_certs"])
        except NotReady as exc:
            return exc
        return health

    polled = poll(attempt, p["timeout"], p["interval"], done=lambda value: not isinstance(value, NotReady))
    elapsed = round(polled.elapsed, 2)
    if polled.done:
        health = polled.value
        module.exit_json(changed=False, url=base, status=health.get("status"),
                         version=str(health.get("version") or ""), elapsed=elapsed, attempts=polled.attempts)
    last = polled.value
    module.fail_json(
        msg=(f"Langfuse at {base} was not healthy and ready after {elapsed}s "
             f"({polled.attempts} attempts, timeout {p['timeout']}s). Last probe: {last.what}. "
             + HINT.format(url=base)),
        url=base, elapsed=elapsed, attempts=polled.attempts,
        last_status=last.status, last_body=last.body, last_error=last.error,
    )


if __name__ == "__main__":
    main()
