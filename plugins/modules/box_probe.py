#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmops.devbox developers
# Apache License 2.0 (see galaxy.yml), which is compatible with the GNU General Public License version 3.

from __future__ import annotations

DOCUMENTATION = r"""
---
module: box_probe
short_description: Answer, in one call, what the roles' preflights ask of a box (Compose, Docker, disk, ports, apt)
version_added: 0.2.0
description:
  - Reads the box and changes nothing. Each probe runs only when asked for, and its answer is returned under its own
    key; a probe that cannot answer (no docker binary, a daemon that does not answer, a port nobody listens on)
    returns that as data, never as a module failure, so the role's assert can say what to change.
  - O(compose) runs C(docker compose version --short). O(docker) runs C(docker info). O(containers) and O(networks)
    each run one C(docker ps) or C(docker network ls) for every entry together.
  - O(disk_paths) measures the free space of the filesystem holding each path with C(statvfs) on the nearest
    existing parent, so a path that does not exist yet (V(/var/lib/docker) before Docker is installed) is measured
    where it will be created.
  - O(ports) tries to connect to each host and port, with the rule of the filter P(llmops.devbox.connect_address#filter)
    (a wildcard bind is reached on the loopback of its family), and lists every TCP socket listening on that port
    with the process that owns it, from C(/proc/net/tcp), C(/proc/net/tcp6) and C(/proc/*/fd), or from C(ss -ltnpH)
    where C(/proc/net) cannot be read. Owners of other users' sockets are only found when run as root.
  - O(apt_lists) says whether the apt lists directory holds downloaded package lists and how old the newest is.
author:
  - llmops.devbox developers (!UNKNOWN)
options:
  compose:
    description: Ask C(docker compose version --short); answer in RV(compose).
    type: bool
    default: false
  docker:
    description: Ask C(docker info); answer in RV(docker).
    type: bool
    default: false
  disk_paths:
    description: Paths whose filesystem's free space is wanted; answer in RV(disk), in the same order.
    type: list
    elements: path
    default: []
  ports:
    description: TCP ports to check; answer in RV(ports), in the same order.
    type: list
    elements: dict
    default: []
    suboptions:
      host:
        description:
          - The address the service binds (or would bind) to, as a role's C(*_bind_address) gives it. V(0.0.0.0),
            V(::), V([::]) and an empty string are wildcards, connected to on V(127.0.0.1) or V(::1).
        type: str
        default: 127.0.0.1
      port:
        description: The TCP port, 1 to 65535.
        type: int
        required: true
  containers:
    description:
      - Running containers of Compose services, looked up by their Compose labels with one C(docker ps); answer in
        RV(containers), in the same order.
    type: list
    elements: dict
    default: []
    suboptions:
      project:
        description: The Compose project name (label C(com.docker.compose.project)).
        type: str
        required: true
      service:
        description: The Compose service name (label C(com.docker.compose.service)).
        type: str
        required: true
  networks:
    description: Docker network names whose existence is wanted, with one C(docker network ls); answer in RV(networks).
    type: list
    elements: str
    default: []
  volumes:
    description: Docker volume names whose existence is wanted, with one C(docker volume ls); answer in RV(volumes).
    type: list
    elements: str
    default: []
  apt_lists:
    description: Look for downloaded apt package lists (files matching C(*_Packages*)); answer in RV(apt_lists).
    type: bool
    default: false
  apt_lists_dir:
    description: Where apt keeps its package lists.
    type: path
    default: /var/lib/apt/lists
  paths:
    description:
      - Paths to look at without following links (C(lstat)); for a link, also where it finally leads and who owns
        that. Answer in RV(paths), in the same order.
    type: list
    elements: path
    default: []
  files:
    description:
      - Small text files (at most 1 MiB) whose content is wanted, read with the rights the module runs with; answer
        in RV(files), in the same order. A task that reads a secret this way needs C(no_log).
    type: list
    elements: path
    default: []
  users:
    description: Login names to look up in the passwd database; answer in RV(users).
    type: list
    elements: str
    default: []
  login_user:
    description:
      - Say which user Ansible logged in as (before C(become)); answer in RV(login_user).
    type: bool
    default: false
  packages:
    description:
      - OS packages whose installed version is wanted, with one C(dpkg-query) (or C(rpm -q) where there is no
        dpkg); answer in RV(packages).
    type: list
    elements: str
    default: []
  timeout:
    description:
      - Seconds to wait for each port connection. Each docker command may take up to 30 times as long
        (a daemon that hangs is reported as not answering).
    type: float
    default: 1.0
attributes:
  check_mode:
    support: full
    description: Probes the same way in check mode; it never changes anything.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to show.
notes:
  - The result's C(changed) is always V(false).
seealso:
  - plugin: llmops.devbox.connect_address
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Probe the box before deploying Langfuse
  llmops.devbox.box_probe:
    compose: true
    disk_paths: [/var/lib/docker]
    ports:
      - host: "{{ langfuse_bind_address }}"
        port: "{{ langfuse_port }}"
    containers:
      - project: langfuse
        service: langfuse-web
  register: __box

- name: Require Docker Compose v2
  ansible.builtin.assert:
    that: __box.compose.v2
    fail_msg: "docker compose version failed ({{ __box.compose.stderr }}): install Docker first."

- name: Require 10 GiB free where Docker keeps its data
  ansible.builtin.assert:
    that: __box.disk[0].free_bytes is not none and __box.disk[0].free_bytes >= 10 * 1024**3
    fail_msg: >-
      Only {{ ((__box.disk[0].free_bytes or 0) / 1024**3) | round(1) }} GiB free on {{ __box.disk[0].mount }}
      {{- (' (' ~ __box.disk[0].error ~ ')') if __box.disk[0].error else '' }}.

- name: Require the port to be free unless the stack runs
  ansible.builtin.assert:
    that: __box.containers[0].running | length > 0 or not __box.ports[0].in_use
    fail_msg: "Port {{ langfuse_port }} is in use: {{ __box.ports[0].holders | join(', ') }}."

- name: Wait until the engine answers after a restart
  llmops.devbox.box_probe:
    docker: true
  register: __engine
  until: __engine.docker.answers
  retries: 5
  delay: 2
"""

RETURN = r"""
compose:
  description: What C(docker compose version --short) answered.
  returned: when O(compose=true)
  type: dict
  contains:
    rc:
      description: Exit code; V(127) when no docker binary was found, V(-1) when it did not end within the timeout.
      type: int
    version:
      description: The version it printed, as printed (V(2.36.2) or V(v2.36.2)); empty when it failed.
      type: str
    v2:
      description: True when it answered (rc 0) with Compose version 2 or later (the C(docker compose) plugin).
      type: bool
    stderr:
      description: Its error output, white space trimmed (the reason when it failed).
      type: str
    problem:
      description:
        - What is wrong, as a sentence for a role's message (it failed and why, or the version it reports is not v2);
          empty when RV(compose.v2) is true.
      type: str
  sample: {rc: 0, version: 2.36.2, v2: true, stderr: "", problem: ""}
docker:
  description: What C(docker info) answered.
  returned: when O(docker=true)
  type: dict
  contains:
    answers:
      description: True when the engine answered and reported its version.
      type: bool
    rc:
      description: Exit code of C(docker info) (127 without a docker binary, -1 after the timeout).
      type: int
    server_version:
      description: The engine's version, empty when it did not answer.
      type: str
    root_dir:
      description: Where the engine keeps its data (C(DockerRootDir)), empty when it did not answer.
      type: str
    error:
      description: Why it did not answer (error output or the server errors it reported), empty when it did.
      type: str
  sample: {answers: true, rc: 0, server_version: 28.5.2, root_dir: /var/lib/docker, error: ""}
disk:
  description: One entry per O(disk_paths) entry, in the same order.
  returned: when O(disk_paths) is not empty
  type: list
  elements: dict
  contains:
    path:
      description: The path asked for.
      type: str
    exists:
      description: Whether the path itself exists.
      type: bool
    measured:
      description: The nearest existing parent (or the path itself) that was measured.
      type: str
    mount:
      description: Mount point of the filesystem holding it (the longest mount point that is a parent).
      type: str
    fstype:
      description: Type of that filesystem, empty when unknown.
      type: str
    free_bytes:
      description: Bytes free for unprivileged users (as C(df) shows as available); null when it could not be measured.
      type: int
    size_bytes:
      description: Size of the filesystem in bytes; null when it could not be measured.
      type: int
    error:
      description: Why it could not be measured, empty otherwise.
      type: str
  sample: [{path: /var/lib/docker, exists: false, measured: /var/lib, mount: /, fstype: ext4,
            free_bytes: 21474836480, size_bytes: 32212254720, error: ""}]
ports:
  description: One entry per O(ports) entry, in the same order.
  returned: when O(ports) is not empty
  type: list
  elements: dict
  contains:
    host:
      description: The bind address asked about.
      type: str
    port:
      description: The port.
      type: int
    connect_host:
      description: The address connected to (see P(llmops.devbox.connect_address#filter)).
      type: str
    listening:
      description: Whether a connection to RV(ports[].connect_host) on the port was accepted.
      type: bool
    in_use:
      description:
        - Whether binding the host and port would clash with what is there - a connection was accepted, or a socket
          listens on the same address, on a wildcard, or (for a wildcard host) on any address of the port.
      type: bool
    holders:
      description:
        - The listeners that clash with the host, each as text for a message, e.g.
          V(docker-proxy (pid 4242\) on 0.0.0.0:3000) or V(an unknown process on [::]:3000).
      type: list
      elements: str
    listeners:
      description: Every TCP socket listening on the port, on any address.
      type: list
      elements: dict
      contains:
        address:
          description: The local address it listens on (V(0.0.0.0), V(::), V(127.0.0.1) ...).
          type: str
        clashes:
          description: Whether it clashes with a bind on RV(ports[].host).
          type: bool
        pid:
          description: Process id of its owner (the lowest when several share it), null when unknown.
          type: int
        process:
          description: Name of that process (C(/proc/<pid>/comm)), empty when unknown.
          type: str
        cgroup:
          description: The control group of that process (its systemd unit shows here), empty when unknown.
          type: str
    owner_lookup:
      description: How owners were found - V(proc), V(ss), or V(none) when neither could be read.
      type: str
    error:
      description: Why the connection failed other than by being refused (a timeout, no route), empty otherwise.
      type: str
  sample: [{host: 127.0.0.1, port: 3000, connect_host: 127.0.0.1, listening: true, in_use: true,
            holders: ["docker-proxy (pid 4242) on 127.0.0.1:3000"],
            listeners: [{address: 127.0.0.1, clashes: true, pid: 4242, process: docker-proxy,
                         cgroup: "0::/system.slice/docker.service"}], owner_lookup: proc, error: ""}]
containers:
  description: One entry per O(containers) entry, in the same order.
  returned: when O(containers) is not empty
  type: list
  elements: dict
  contains:
    project:
      description: The Compose project.
      type: str
    service:
      description: The Compose service.
      type: str
    running:
      description: Ids of its running containers (empty when none runs or docker did not answer).
      type: list
      elements: str
    images:
      description: The image each of those containers runs, as it was started (C(name:tag)), same order.
      type: list
      elements: str
    error:
      description: Why C(docker ps) failed, empty when it answered.
      type: str
networks:
  description: One entry per O(networks) entry, in the same order.
  returned: when O(networks) is not empty
  type: list
  elements: dict
  contains:
    name:
      description: The network name.
      type: str
    exists:
      description: Whether a network of exactly that name exists (false when docker did not answer).
      type: bool
    error:
      description: Why C(docker network ls) failed, empty when it answered.
      type: str
volumes:
  description: One entry per O(volumes) entry, in the same order.
  returned: when O(volumes) is not empty
  type: list
  elements: dict
  contains:
    name:
      description: The volume name.
      type: str
    exists:
      description: Whether a volume of exactly that name exists (false when docker did not answer).
      type: bool
    error:
      description: Why C(docker volume ls) failed, empty when it answered.
      type: str
apt_lists:
  description: What the apt lists directory holds.
  returned: when O(apt_lists=true)
  type: dict
  contains:
    path:
      description: The directory looked at.
      type: str
    present:
      description: Whether it holds at least one downloaded package list.
      type: bool
    count:
      description: How many package list files it holds.
      type: int
    newest_age:
      description: Age in whole seconds of the newest package list; null when there is none.
      type: int
    error:
      description: Why the directory could not be read (it does not exist on a non-apt box), empty otherwise.
      type: str
  sample: {path: /var/lib/apt/lists, present: true, count: 6, newest_age: 5400, error: ""}
paths:
  description: One entry per O(paths) entry, in the same order.
  returned: when O(paths) is not empty
  type: list
  elements: dict
  contains:
    path:
      description: The path asked for.
      type: str
    exists:
      description: Whether something (a link too, even a dangling one) is there.
      type: bool
    islnk:
      description: Whether it is a symbolic link.
      type: bool
    isdir:
      description: Whether it is a directory (not a link to one).
      type: bool
    isreg:
      description: Whether it is a regular file (not a link to one).
      type: bool
    uid:
      description: Owner's uid of the path itself; null when it does not exist.
      type: int
    gid:
      description: Group id of the path itself; null when it does not exist.
      type: int
    owner:
      description: Owner's name (the uid as text when it has none); empty when it does not exist.
      type: str
    mode:
      description: Permission bits in octal (V(0644)); empty when it does not exist.
      type: str
    lnk_target:
      description: What the link says (C(readlink)); empty when it is no link.
      type: str
    target:
      description:
        - For a link, where it finally leads (C(realpath)) and who owns that - C(path), C(exists), C(uid), C(owner);
          null when it is no link.
      type: dict
  sample: [{path: /home/admin/.config, exists: true, islnk: true, isdir: false, isreg: false, uid: 1000,
            gid: 1000, owner: admin, mode: "0777", lnk_target: /root,
            target: {path: /root, exists: true, uid: 0, owner: root}}]
files:
  description: One entry per O(files) entry, in the same order.
  returned: when O(files) is not empty
  type: list
  elements: dict
  contains:
    path:
      description: The path asked for.
      type: str
    exists:
      description: Whether it could be opened.
      type: bool
    content:
      description: Its text (UTF-8, undecodable bytes replaced); empty when it could not be read.
      type: str
    error:
      description: Why it could not be read (V(not found) when it does not exist), empty otherwise.
      type: str
users:
  description: Each name of O(users), with its passwd entry, or null when there is no such user.
  returned: when O(users) is not empty
  type: dict
  sample: {admin: {uid: 1000, gid: 1000, home: /home/admin, shell: /bin/bash}, nobody2: null}
login_user:
  description:
    - The user Ansible logged in as - the module's own user, or when it runs as root, C(SUDO_USER) or the first
      process above it owned by someone else (C(su)); V(root) when that is root itself.
  returned: when O(login_user=true)
  type: str
  sample: admin
packages:
  description:
    - Each name of O(packages) with its installed version, or null when it is not installed; every value is null
      when neither C(dpkg-query) nor C(rpm) is there.
  returned: when O(packages) is not empty
  type: dict
  sample: {nodejs: 20.19.2+dfsg-1, npm: null}
"""

# Ansible requires the documentation blocks before any import, hence the E402 waivers.
import errno  # noqa: E402
import fnmatch  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import pwd  # noqa: E402
import re  # noqa: E402
import socket  # noqa: E402
import stat  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.llmops.devbox.plugins.module_utils._address import (  # noqa: E402
    bare,
    connect_address,
    parse_ip,
)

TCP_LISTEN = "0A"
PROC_NET = ("/proc/net/tcp", "/proc/net/tcp6")
APT_LIST_PATTERN = "*_Packages*"
# docker commands get this many times the port timeout (30 s with the default of 1 s).
DOCKER_TIMEOUT_FACTOR = 30


# --- commands ------------------------------------------------------------------------------


def run(argv, timeout):
    """(rc, stdout, stderr) of argv, in the C locale; rc 127 without the binary, -1 after the timeout."""
    env = dict(os.environ, LC_ALL="C", LANG="C")
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=env, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return -1, "", f"{' '.join(argv)} did not end within {timeout:g} s"
    except OSError as exc:
        return 127, "", f"cannot run {argv[0]}: {exc.strerror or exc}"
    return (proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace"))


class Docker:
    """The docker CLI, looked up once; every call answers (rc, stdout, stderr)."""

    def __init__(self, module, timeout):
        self.path = module.get_bin_path("docker")
        self.timeout = timeout

    def __call__(self, *args):
        if not self.path:
            return 127, "", "docker: command not found (no docker binary on PATH)"
        return run([self.path, *args], self.timeout)


def compose_version(docker):
    rc, out, err = docker("compose", "version", "--short")
    version = out.strip() if rc == 0 else ""
    match = re.match(r"^v?(\d+)\.", version)
    v2 = bool(rc == 0 and match and int(match.group(1)) >= 2)
    problem = ""
    if rc != 0:
        problem = f"'docker compose version' failed ({(err.strip() or f'rc {rc}')[:200]})"
    elif not v2:
        problem = f"'docker compose version' reports {version or 'nothing'}, not Compose v2 or later"
    return {"rc": rc, "version": version, "v2": v2, "stderr": err.strip(), "problem": problem}


def docker_info(docker):
    rc, out, err = docker("info", "--format", "{{json .}}")
    info = {}
    try:
        info = json.loads(out) if out.strip() else {}
    except ValueError:
        info = {}
    if not isinstance(info, dict):
        info = {}
    version = str(info.get("ServerVersion") or "")
    answers = rc == 0 and bool(version)
    server_errors = info.get("ServerErrors") or []
    error = "" if answers else "; ".join([err.strip()] + [str(e) for e in server_errors if e]).strip("; ")
    if not answers and not error:
        error = f"docker info ended with rc {rc} and no server version"
    return {"answers": answers, "rc": rc, "server_version": version if answers else "",
            "root_dir": str(info.get("DockerRootDir") or "") if answers else "", "error": error}


def containers(docker, wanted):
    rc, out, err = docker("ps", "--format",
                          '{{.ID}}\t{{.Label "com.docker.compose.project"}}\t{{.Label "com.docker.compose.service"}}'
                          "\t{{.Image}}")
    found = []
    for line in out.splitlines() if rc == 0 else []:
        parts = line.split("\t")
        if len(parts) == 3:  # an image-less answer still names the container
            parts.append("")
        if len(parts) == 4:
            found.append(parts)
    error = "" if rc == 0 else (err.strip() or f"docker ps ended with rc {rc}")
    out = []
    for w in wanted:
        mine = [f for f in found if f[1] == w["project"] and f[2] == w["service"]]
        out.append({"project": w["project"], "service": w["service"], "error": error,
                    "running": [f[0] for f in mine], "images": [f[3] for f in mine]})
    return out


def _named(docker, kind, names):
    rc, out, err = docker(kind, "ls", "--format", "{{.Name}}")
    existing = set(out.split()) if rc == 0 else set()
    error = "" if rc == 0 else (err.strip() or f"docker {kind} ls ended with rc {rc}")
    return [{"name": name, "exists": name in existing, "error": error} for name in names]


def networks(docker, names):
    return _named(docker, "network", names)


def volumes(docker, names):
    return _named(docker, "volume", names)


# --- disk ----------------------------------------------------------------------------------


def _unescape_mount(field):
    """/proc/mounts writes space, tab, newline and backslash as octal escapes."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def read_mounts(path="/proc/self/mounts"):
    """[(mount point, fstype)] of the mount table, [] when it cannot be read."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return []
    mounts = []
    for line in lines:
        fields = line.split()
        if len(fields) >= 3:
            mounts.append((_unescape_mount(fields[1]), fields[2]))
    return mounts


def _is_under(path, parent):
    return parent == "/" or path == parent or path.startswith(parent.rstrip("/") + "/")


def mount_of(path, mounts):
    """(mount point, fstype) holding path: the longest mount point that is a parent of it."""
    best, fstype = "", ""
    for point, kind in mounts:
        if _is_under(path, point) and len(point) >= len(best):
            best, fstype = point, kind
    if best:
        return best, fstype
    walk = path
    while not os.path.ismount(walk) and walk != os.path.dirname(walk):
        walk = os.path.dirname(walk)
    return walk, ""


def disk(path, mounts):
    asked = os.path.abspath(path)
    measured = asked
    while not os.path.exists(measured) and measured != os.path.dirname(measured):
        measured = os.path.dirname(measured)
    result = {"path": path, "exists": os.path.exists(asked), "measured": measured, "mount": "", "fstype": "",
              "free_bytes": None, "size_bytes": None, "error": ""}
    try:
        stat = os.statvfs(measured)
    except OSError as exc:
        result["error"] = f"statvfs({measured}) failed: {exc.strerror or exc}"
        return result
    result["free_bytes"] = stat.f_bavail * stat.f_frsize
    result["size_bytes"] = stat.f_blocks * stat.f_frsize
    result["mount"], result["fstype"] = mount_of(os.path.realpath(measured), mounts)
    return result


# --- ports ---------------------------------------------------------------------------------


def _proc_address(hexaddr):
    """Address of /proc/net/tcp{,6} (little-endian 32-bit words in hex) as text."""
    raw = bytes.fromhex(hexaddr)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    if len(words) == 4:
        return socket.inet_ntop(socket.AF_INET, words)
    address = socket.inet_ntop(socket.AF_INET6, words)
    mapped = parse_ip(address)
    return str(mapped) if mapped is not None and mapped.version == 4 else address


def proc_listeners(paths=PROC_NET):
    """{port: [(address, inode)]} of listening TCP sockets; None when /proc/net cannot be read."""
    found, read_any = {}, False
    for path in paths:
        try:
            with open(path, encoding="ascii", errors="replace") as handle:
                lines = handle.read().splitlines()[1:]
        except OSError:
            continue
        read_any = True
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != TCP_LISTEN:
                continue
            hexaddr, _sep, hexport = fields[1].partition(":")
            try:
                found.setdefault(int(hexport, 16), []).append((_proc_address(hexaddr), fields[9]))
            except ValueError:
                continue
    return found if read_any else None


def socket_owners(inodes, proc="/proc"):
    """{inode: lowest pid} for the socket inodes, from the fd links of every process we may read."""
    wanted = {f"socket:[{inode}]": inode for inode in inodes}
    owners = {}
    if not wanted:
        return owners
    try:
        pids = sorted(int(name) for name in os.listdir(proc) if name.isdigit())
    except OSError:
        return owners
    for pid in pids:
        fd_dir = os.path.join(proc, str(pid), "fd")
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(os.path.join(fd_dir, fd))
            except OSError:
                continue
            inode = wanted.get(target)
            if inode is not None and inode not in owners:
                owners[inode] = pid
        if len(owners) == len(wanted):
            break
    return owners


def _read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def process_info(pid, proc="/proc"):
    if pid is None:
        return {"pid": None, "process": "", "cgroup": ""}
    return {"pid": pid, "process": _read(os.path.join(proc, str(pid), "comm")),
            "cgroup": _read(os.path.join(proc, str(pid), "cgroup"))}


SS_USERS = re.compile(r'\("([^"]*)",pid=(\d+)')


def ss_listeners(ss_path, timeout):
    """{port: [(address, pid, process)]} from `ss -ltnpH`; None when ss is missing or fails."""
    if not ss_path:
        return None
    rc, out, _err = run([ss_path, "-ltnpH"], timeout)
    if rc != 0:
        return None
    found = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        local = fields[3]
        address, _sep, port = local.rpartition(":")
        address = bare(address.split("%", 1)[0])
        mapped = parse_ip(address)
        address = "0.0.0.0" if address == "*" else (str(mapped) if mapped is not None else address)
        try:
            port = int(port)
        except ValueError:
            continue
        owners = SS_USERS.findall(" ".join(fields[5:]))
        pids = sorted((int(pid), name) for name, pid in owners)
        pid, name = pids[0] if pids else (None, "")
        found.setdefault(port, []).append((address, pid, name))
    return found


def clashes(host, listener):
    """Whether binding host clashes with a socket listening on listener (same port).

    The same address clashes; a wildcard on either side clashes within its family; an IPv6 wildcard
    (it may be dual-stack: IPV6_V6ONLY is not visible) and '' / * clash with everything.
    """
    host_text, listener_text = bare(host), bare(listener)
    if host_text in ("", "*") or listener_text in ("", "*"):
        return True
    host_ip, listener_ip = parse_ip(host_text), parse_ip(listener_text)
    if host_ip is None or listener_ip is None:
        return host_text == listener_text
    if host_ip == listener_ip:
        return True
    for one, other in ((host_ip, listener_ip), (listener_ip, host_ip)):
        if one.is_unspecified and (one.version == 6 or other.version == one.version):
            return True
    return False


def holder(listener, port):
    """'docker-proxy (pid 4242) on 0.0.0.0:3000', for a message."""
    address = listener["address"]
    where = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    if listener["pid"] is None:
        return f"an unknown process on {where}"
    return f"{listener['process'] or 'process'} (pid {listener['pid']}) on {where}"


def try_connect(host, port, timeout):
    """(accepted, error): a refused connection is (False, '')."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        return False, f"cannot resolve {host}: {exc}"
    error = ""
    for family, kind, proto, _name, address in infos:
        sock = socket.socket(family, kind, proto)
        sock.settimeout(timeout)
        try:
            sock.connect(address)
            return True, ""
        except ConnectionRefusedError:
            continue
        except OSError as exc:
            if exc.errno == errno.ECONNREFUSED:
                continue
            error = f"connecting to {host}:{port}: {exc.strerror or exc}"
        finally:
            sock.close()
    return False, error


def ports(wanted, timeout, ss_path):
    table = proc_listeners()
    lookup = "proc"
    owners = {}
    if table is not None:
        inodes = [inode for w in wanted for _address, inode in table.get(w["port"], [])]
        owners = socket_owners(inodes)
    else:
        table = ss_listeners(ss_path, timeout * DOCKER_TIMEOUT_FACTOR)
        lookup = "ss" if table is not None else "none"
    results = []
    for w in wanted:
        host, port = w["host"] if w["host"] is not None else "127.0.0.1", w["port"]
        target = connect_address(host)
        listening, error = try_connect(target, port, timeout)
        listeners = []
        for entry in (table or {}).get(port, []):
            if lookup == "proc":
                address, inode = entry
                info = process_info(owners.get(inode))
            else:
                address, pid, name = entry
                info = process_info(pid)
                info["process"] = info["process"] or name
            listeners.append({"address": address, "clashes": clashes(host, address), **info})
        holders = [holder(listener, port) for listener in listeners if listener["clashes"]]
        results.append({"host": host, "port": port, "connect_host": target, "listening": listening,
                        "in_use": listening or bool(holders), "holders": holders,
                        "listeners": listeners, "owner_lookup": lookup, "error": error})
    return results


# --- apt -----------------------------------------------------------------------------------


def apt_lists(path, now=None):
    result = {"path": path, "present": False, "count": 0, "newest_age": None, "error": ""}
    try:
        entries = [entry for entry in os.scandir(path)
                   if fnmatch.fnmatch(entry.name, APT_LIST_PATTERN) and entry.is_file()]
    except OSError as exc:
        result["error"] = f"cannot read {path}: {exc.strerror or exc}"
        return result
    if entries:
        newest = max(entry.stat().st_mtime for entry in entries)
        now = time.time() if now is None else now
        result.update(present=True, count=len(entries), newest_age=max(0, int(now - newest)))
    return result


# --- paths, files, users, packages ---------------------------------------------------------

FILE_LIMIT = 1024 * 1024


def _owner(uid):
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def path_info(path):
    result = {"path": path, "exists": False, "islnk": False, "isdir": False, "isreg": False, "uid": None,
              "gid": None, "owner": "", "mode": "", "lnk_target": "", "target": None}
    try:
        st = os.lstat(path)
    except OSError:
        return result
    result.update(exists=True, islnk=stat.S_ISLNK(st.st_mode), isdir=stat.S_ISDIR(st.st_mode),
                  isreg=stat.S_ISREG(st.st_mode), uid=st.st_uid, gid=st.st_gid, owner=_owner(st.st_uid),
                  mode="%04o" % stat.S_IMODE(st.st_mode))
    if result["islnk"]:
        result["lnk_target"] = os.readlink(path)
        resolved = os.path.realpath(path)
        target = {"path": resolved, "exists": False, "uid": None, "owner": ""}
        try:
            tst = os.lstat(resolved)
            target.update(exists=True, uid=tst.st_uid, owner=_owner(tst.st_uid))
        except OSError:
            pass
        result["target"] = target
    return result


def read_file(path):
    result = {"path": path, "exists": False, "content": "", "error": ""}
    try:
        with open(path, "rb") as handle:
            data = handle.read(FILE_LIMIT + 1)
    except OSError as exc:
        result["error"] = "not found" if exc.errno == errno.ENOENT else f"cannot read {path}: {exc.strerror or exc}"
        return result
    result["exists"] = True
    if len(data) > FILE_LIMIT:
        result["error"] = f"{path} is larger than {FILE_LIMIT} bytes"
        return result
    result["content"] = data.decode("utf-8", errors="replace")
    return result


def users(names):
    found = {}
    for name in names:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            found[name] = None
            continue
        found[name] = {"uid": entry.pw_uid, "gid": entry.pw_gid, "home": entry.pw_dir, "shell": entry.pw_shell}
    return found


def _proc_status(pid, proc):
    fields = {}
    for line in _read(f"{proc}/{pid}/status").splitlines():
        key, _sep, value = line.partition(":")
        fields[key] = value.split()
    return fields


def login_user(proc="/proc", env=None, uid=None, pid=None):
    """Who Ansible logged in as: us, or under become to root the sudo/su caller."""
    env = os.environ if env is None else env
    uid = os.getuid() if uid is None else uid
    if uid != 0:
        return _owner(uid)
    if env.get("SUDO_USER"):
        return env["SUDO_USER"]
    pid = os.getpid() if pid is None else pid
    for _hop in range(64):
        fields = _proc_status(pid, proc)
        if not fields.get("Uid") or not fields.get("PPid"):
            break
        if int(fields["Uid"][0]) != 0:
            return _owner(int(fields["Uid"][0]))
        pid = int(fields["PPid"][0])
        if pid <= 1:
            break
    return "root"


def packages(module, names, timeout):
    found = dict.fromkeys(names)
    dpkg = module.get_bin_path("dpkg-query")
    rpm = module.get_bin_path("rpm")
    if dpkg:
        _rc, out, _err = run([dpkg, "-W", "-f", "${Package}\t${db:Status-Abbrev}\t${Version}\n", *names], timeout)
        for line in out.splitlines():
            name, status, version = (line.split("\t") + ["", ""])[:3]
            # The second letter is the current state: "ii " and "hi " (held) are installed; "rc " (removed,
            # config kept), "un " (unknown) and "iU "/"iF " (half-installed) are not.
            if name in found and status[1:2] == "i":
                found[name] = version
    elif rpm:
        _rc, out, _err = run([rpm, "-q", "--qf", "%{NAME}\t%{VERSION}-%{RELEASE}\n", *names], timeout)
        for line in out.splitlines():
            name, _sep, version = line.partition("\t")
            if name in found and version:
                found[name] = version
    return found


# --- module --------------------------------------------------------------------------------


def probe(module):
    params = module.params
    timeout = params["timeout"]
    for entry in params["ports"]:
        if not 1 <= entry["port"] <= 65535:
            module.fail_json(msg=f"ports: port {entry['port']} is not a TCP port (1 to 65535).")
    result = {"changed": False}
    needs_docker = (params["compose"] or params["docker"] or params["containers"] or params["networks"]
                    or params["volumes"])
    docker = Docker(module, timeout * DOCKER_TIMEOUT_FACTOR) if needs_docker else None
    if params["compose"]:
        result["compose"] = compose_version(docker)
    if params["docker"]:
        result["docker"] = docker_info(docker)
    if params["containers"]:
        result["containers"] = containers(docker, params["containers"])
    if params["networks"]:
        result["networks"] = networks(docker, params["networks"])
    if params["volumes"]:
        result["volumes"] = volumes(docker, params["volumes"])
    if params["disk_paths"]:
        mounts = read_mounts()
        result["disk"] = [disk(path, mounts) for path in params["disk_paths"]]
    if params["ports"]:
        result["ports"] = ports(params["ports"], timeout, module.get_bin_path("ss"))
    if params["apt_lists"]:
        result["apt_lists"] = apt_lists(params["apt_lists_dir"])
    if params["paths"]:
        result["paths"] = [path_info(path) for path in params["paths"]]
    if params["files"]:
        result["files"] = [read_file(path) for path in params["files"]]
    if params["users"]:
        result["users"] = users(params["users"])
    if params["login_user"]:
        result["login_user"] = login_user()
    if params["packages"]:
        result["packages"] = packages(module, params["packages"], timeout * DOCKER_TIMEOUT_FACTOR)
    return result


def main():
    module = AnsibleModule(
        argument_spec={
            "compose": {"type": "bool", "default": False},
            "docker": {"type": "bool", "default": False},
            "disk_paths": {"type": "list", "elements": "path", "default": []},
            "ports": {"type": "list", "elements": "dict", "default": [], "options": {
                "host": {"type": "str", "default": "127.0.0.1"},
                "port": {"type": "int", "required": True},
            }},
            "containers": {"type": "list", "elements": "dict", "default": [], "options": {
                "project": {"type": "str", "required": True},
                "service": {"type": "str", "required": True},
            }},
            "networks": {"type": "list", "elements": "str", "default": []},
            "volumes": {"type": "list", "elements": "str", "default": []},
            "apt_lists": {"type": "bool", "default": False},
            "apt_lists_dir": {"type": "path", "default": "/var/lib/apt/lists"},
            "paths": {"type": "list", "elements": "path", "default": []},
            "files": {"type": "list", "elements": "path", "default": []},
            "users": {"type": "list", "elements": "str", "default": []},
            "login_user": {"type": "bool", "default": False},
            "packages": {"type": "list", "elements": "str", "default": []},
            "timeout": {"type": "float", "default": 1.0},
        },
        supports_check_mode=True,
    )
    module.exit_json(**probe(module))


if __name__ == "__main__":
    main()
