"""llmops.devbox.box_probe: one call answers what the preflights ask, and a probe that fails is data.

Real sockets listen on real ports, a temp dir stands in for the disk and the apt lists, and a fake
`docker` on PATH answers as Compose v2, as Compose v1, as a broken engine, not at all (no binary), or
hangs.
"""

from __future__ import annotations

import os
import socket
import stat
import time
from pathlib import Path

import pytest

from ansible_collections.llmops.devbox.plugins.modules import box_probe
from ansible_collections.llmops.devbox.tests.unit.httpserver import run_module

V2 = r"""#!/bin/sh
echo "$*" >> "${0%/docker}/calls.log"
case "$1 $2" in
  "compose version") echo "v2.36.2" ;;
  "info --format") echo '{"ServerVersion":"28.5.2","DockerRootDir":"/srv/docker","ServerErrors":null}' ;;
  "ps --format")
    printf 'a1b2c3\tlangfuse\tlangfuse-web\tlangfuse/langfuse:4.1.0\n'
    printf 'd4e5f6\tlitellm\tlitellm-haproxy\n'
    printf '0a0b0c\tother\tlangfuse-web\n' ;;
  "network ls") printf 'bridge\nhost\nlangfuse_default\n' ;;
  "volume ls") printf 'langfuse_postgres_data\nlitellm_postgres\n' ;;
  *) echo "fake docker: unexpected $*" >&2; exit 2 ;;
esac
"""
# Compose v1 answering as `docker compose` (Docker Desktop's old compose-cli did).
V1 = r"""#!/bin/sh
case "$1 $2" in
  "compose version") echo "1.29.2" ;;
  *) exit 2 ;;
esac
"""
# A CLI without the Compose plugin and an engine that does not run.
BROKEN = r"""#!/bin/sh
case "$1 $2" in
  "compose version") echo "unknown flag: --short" >&2; echo "See 'docker --help'." >&2; exit 125 ;;
  "info --format")
    printf '{"ServerVersion":"","ServerErrors":["Cannot connect to the Docker daemon at %s. %s"]}\n' \
      unix:///var/run/docker.sock "Is the docker daemon running?"
    exit 1 ;;
  *) echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock." >&2; exit 1 ;;
esac
"""
HANGS = """#!/bin/sh
exec /bin/sleep 30
"""


def fake_docker(tmp_path, script):
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    docker = bindir / "docker"
    docker.write_text(script)
    docker.chmod(docker.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return bindir


def probe(monkeypatch, bindir, args, check_mode=False):
    monkeypatch.setenv("PATH", str(bindir))
    rc, result = run_module("box_probe", args, check_mode=check_mode)
    assert rc == 0, result
    assert result["changed"] is False
    return result


def listener(host="127.0.0.1"):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.bind((host, 0))
    sock.listen(1)
    return sock


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def has_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


# --- Compose and the engine ------------------------------------------------------------------


def test_compose_v2_and_the_engine_answer(tmp_path, monkeypatch):
    bindir = fake_docker(tmp_path, V2)
    result = probe(monkeypatch, bindir, {"compose": True, "docker": True})
    assert result["compose"] == {"rc": 0, "version": "v2.36.2", "v2": True, "stderr": "", "problem": ""}
    assert result["docker"] == {"answers": True, "rc": 0, "server_version": "28.5.2", "root_dir": "/srv/docker",
                                "error": ""}
    assert "disk" not in result and "ports" not in result and "apt_lists" not in result


def test_compose_v1_is_not_v2(tmp_path, monkeypatch):
    result = probe(monkeypatch, fake_docker(tmp_path, V1), {"compose": True})
    assert result["compose"] == {"rc": 0, "version": "1.29.2", "v2": False, "stderr": "",
                                 "problem": "'docker compose version' reports 1.29.2, not Compose v2 or later"}


@pytest.mark.parametrize(("version", "v2"), [("2.0.0", True), ("v2.40.3", True), ("5.0.0", True), ("v10.1.0", True),
                                             ("1.29.2", False), ("", False), ("dev", False)])
def test_any_compose_from_2_on_counts(version, v2):
    assert box_probe.compose_version(lambda *args: (0, version + "\n", ""))["v2"] is v2


def test_a_failing_cli_and_engine_are_data(tmp_path, monkeypatch):
    result = probe(monkeypatch, fake_docker(tmp_path, BROKEN),
                   {"compose": True, "docker": True, "containers": [{"project": "langfuse", "service": "langfuse-web"}],
                    "networks": ["langfuse_default"]})
    assert result["compose"] == {"rc": 125, "version": "", "v2": False,
                                 "stderr": "unknown flag: --short\nSee 'docker --help'.",
                                 "problem": "'docker compose version' failed "
                                            "(unknown flag: --short\nSee 'docker --help'.)"}
    engine = result["docker"]
    assert engine["answers"] is False and engine["rc"] == 1 and engine["server_version"] == ""
    assert "Is the docker daemon running?" in engine["error"]
    assert result["containers"][0]["running"] == [] and "Cannot connect" in result["containers"][0]["error"]
    assert result["networks"] == [{"name": "langfuse_default", "exists": False,
                                   "error": "Cannot connect to the Docker daemon at unix:///var/run/docker.sock."}]


def test_no_docker_binary(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = probe(monkeypatch, empty, {"compose": True, "docker": True, "networks": ["x"]})
    assert result["compose"]["rc"] == 127 and result["compose"]["v2"] is False
    assert "docker: command not found" in result["compose"]["stderr"]
    assert result["compose"]["problem"].startswith("'docker compose version' failed (docker: command not found")
    assert result["docker"]["answers"] is False and "command not found" in result["docker"]["error"]
    assert result["networks"][0]["exists"] is False


def test_an_engine_that_hangs_is_not_waited_for(tmp_path, monkeypatch):
    started = time.monotonic()
    result = probe(monkeypatch, fake_docker(tmp_path, HANGS), {"docker": True, "timeout": 0.05})
    assert time.monotonic() - started < 20
    assert result["docker"]["rc"] == -1 and result["docker"]["answers"] is False
    assert "did not end within 1.5 s" in result["docker"]["error"]


def test_containers_and_networks_take_one_docker_call_each(tmp_path, monkeypatch):
    bindir = fake_docker(tmp_path, V2)
    result = probe(monkeypatch, bindir, {
        "containers": [{"project": "langfuse", "service": "langfuse-web"},
                       {"project": "litellm", "service": "litellm-haproxy"},
                       {"project": "litellm", "service": "litellm-blue"}],
        "networks": ["langfuse_default", "langfuse"],
        "volumes": ["langfuse_postgres_data", "langfuse_minio_data"]})
    assert [c["running"] for c in result["containers"]] == [["a1b2c3"], ["d4e5f6"], []]
    # The image each runs, as started; an answer without the column still counts the container.
    assert [c["images"] for c in result["containers"]] == [["langfuse/langfuse:4.1.0"], [""], []]
    assert all(c["error"] == "" for c in result["containers"])
    assert [(n["name"], n["exists"]) for n in result["networks"]] == [("langfuse_default", True), ("langfuse", False)]
    calls = (bindir / "calls.log").read_text().splitlines()
    assert [(v["name"], v["exists"]) for v in result["volumes"]] == [("langfuse_postgres_data", True),
                                                                     ("langfuse_minio_data", False)]
    assert [call.split()[0] for call in calls] == ["ps", "network", "volume"]


# --- ports -----------------------------------------------------------------------------------


def test_a_listening_port_is_in_use_and_its_owner_named(tmp_path, monkeypatch):
    with listener() as sock:
        port = sock.getsockname()[1]
        result = probe(monkeypatch, tmp_path, {"ports": [{"host": "127.0.0.1", "port": port}]})
    (entry,) = result["ports"]
    assert entry["listening"] is True and entry["in_use"] is True and entry["error"] == ""
    assert entry["connect_host"] == "127.0.0.1" and entry["owner_lookup"] == "proc"
    (found,) = entry["listeners"]
    assert found["address"] == "127.0.0.1" and found["clashes"] is True
    assert found["pid"] == os.getpid(), "the test process holds the socket"
    assert found["process"] == Path(f"/proc/{os.getpid()}/comm").read_text().strip()
    assert entry["holders"] == [f"{found['process']} (pid {os.getpid()}) on 127.0.0.1:{port}"]


def test_a_free_port_is_free(tmp_path, monkeypatch):
    port = free_port()
    result = probe(monkeypatch, tmp_path, {"ports": [{"port": port}]})
    assert result["ports"] == [{"host": "127.0.0.1", "port": port, "connect_host": "127.0.0.1", "listening": False,
                                "in_use": False, "holders": [], "listeners": [], "owner_lookup": "proc", "error": ""}]


def test_a_wildcard_bind_is_checked_on_loopback_and_clashes_with_any_address(tmp_path, monkeypatch):
    with listener("127.0.0.1") as sock:
        port = sock.getsockname()[1]
        result = probe(monkeypatch, tmp_path, {"ports": [{"host": "0.0.0.0", "port": port}, {"host": "", "port": port},
                                                         {"host": "10.255.255.1", "port": port}]})
    wildcard, empty, other = result["ports"]
    assert wildcard["connect_host"] == "127.0.0.1" and wildcard["listening"] and wildcard["in_use"]
    assert empty["connect_host"] == "127.0.0.1" and empty["in_use"]
    # Another address of the box may bind the same port beside 127.0.0.1.
    assert other["listeners"][0]["clashes"] is False


def test_a_listener_on_the_ipv4_wildcard_clashes_within_its_family_only(tmp_path, monkeypatch):
    if not has_ipv6_loopback():
        pytest.skip("no IPv6 loopback")
    with listener("0.0.0.0") as sock:
        port = sock.getsockname()[1]
        result = probe(monkeypatch, tmp_path, {"ports": [{"host": "127.0.0.1", "port": port},
                                                         {"host": "::1", "port": port}]})
    ipv4, ipv6 = result["ports"]
    assert ipv4["in_use"] is True and ipv4["listeners"][0]["address"] == "0.0.0.0"
    assert ipv6["connect_host"] == "::1" and ipv6["listening"] is False and ipv6["in_use"] is False


def test_the_ipv6_wildcard_is_reached_on_ipv6_loopback(tmp_path, monkeypatch):
    if not has_ipv6_loopback():
        pytest.skip("no IPv6 loopback")
    with listener("::1") as sock:
        port = sock.getsockname()[1]
        result = probe(monkeypatch, tmp_path, {"ports": [{"host": "[::]", "port": port}]})
    (entry,) = result["ports"]
    assert entry["connect_host"] == "::1" and entry["listening"] is True and entry["in_use"] is True
    assert entry["listeners"][0]["address"] == "::1"
    assert entry["holders"][0].endswith(f"on [::1]:{port}")


def test_a_bad_port_is_a_usage_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    rc, result = run_module("box_probe", {"ports": [{"port": 70000}]})
    assert rc == 1 and "70000 is not a TCP port" in result["msg"]


@pytest.mark.parametrize(
    ("host", "listening_on", "clash"),
    [("127.0.0.1", "127.0.0.1", True), ("127.0.0.1", "0.0.0.0", True), ("127.0.0.1", "::", True),
     ("127.0.0.1", "10.0.0.5", False), ("127.0.0.1", "::1", False), ("::1", "0.0.0.0", False),
     ("::1", "::", True), ("0.0.0.0", "10.0.0.5", True), ("0.0.0.0", "::1", False), ("::", "127.0.0.1", True),
     ("", "::1", True), ("[::1]", "::1", True), ("localhost", "127.0.0.1", False)],
)
def test_clash_rule(host, listening_on, clash):
    assert box_probe.clashes(host, listening_on) is clash


def test_proc_net_tcp_is_read(tmp_path):
    tcp, tcp6 = tmp_path / "tcp", tmp_path / "tcp6"
    head = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    tcp.write_text(head
                   + "   0: 0100007F:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000  0 0 111 1\n"
                   + "   1: 00000000:0FA0 00000000:0000 0A 00000000:00000000 00:00000000 00000000  0 0 222 1\n"
                   + "   2: 0100007F:0BB8 0100007F:D431 01 00000000:00000000 00:00000000 00000000  0 0 333 1\n")
    tcp6.write_text(head
                    + "   0: 00000000000000000000000001000000:0BB8 00000000000000000000000000000000:0000 0A "
                      "00000000:00000000 00:00000000 00000000  0 0 444 1\n"
                    + "   1: 00000000000000000000000000000000:0FA0 00000000000000000000000000000000:0000 0A "
                      "00000000:00000000 00:00000000 00000000  0 0 555 1\n"
                    + "   2: 0000000000000000FFFF00000100007F:1F90 00000000000000000000000000000000:0000 0A "
                      "00000000:00000000 00:00000000 00000000  0 0 666 1\n")
    found = box_probe.proc_listeners((str(tcp), str(tcp6)))
    assert found == {3000: [("127.0.0.1", "111"), ("::1", "444")], 4000: [("0.0.0.0", "222"), ("::", "555")],
                     8080: [("127.0.0.1", "666")]}
    assert box_probe.proc_listeners((str(tmp_path / "missing"),)) is None


def test_ss_is_read_where_proc_net_is_not(tmp_path):
    ss = tmp_path / "ss"
    ss.write_text("#!/bin/sh\ncat <<'EOF'\n"
                  'LISTEN 0 4096 127.0.0.1:3000 0.0.0.0:* users:(("docker-proxy",pid=4242,fd=7))\n'
                  'LISTEN 0 511 [::]:8080 [::]:* users:(("node",pid=77,fd=20),("node",pid=75,fd=20))\n'
                  "LISTEN 0 128 *:22 *:*\n"
                  "LISTEN 0 128 [::ffff:127.0.0.1]:9090 [::]:*\n"
                  "EOF\n")
    ss.chmod(0o755)
    assert box_probe.ss_listeners(str(ss), 5) == {3000: [("127.0.0.1", 4242, "docker-proxy")],
                                                  8080: [("::", 75, "node")], 22: [("0.0.0.0", None, "")],
                                                  9090: [("127.0.0.1", None, "")]}
    assert box_probe.ss_listeners(None, 5) is None


# --- disk ------------------------------------------------------------------------------------


def test_free_space_of_a_path_not_there_yet_is_its_parents(tmp_path, monkeypatch):
    want = tmp_path / "docker" / "data"
    result = probe(monkeypatch, tmp_path, {"disk_paths": [str(want), str(tmp_path)]}, check_mode=True)
    later, here = result["disk"]
    fs = os.statvfs(tmp_path)
    assert later["path"] == str(want) and later["exists"] is False and later["measured"] == str(tmp_path)
    assert here["exists"] is True and here["measured"] == str(tmp_path)
    for entry in (later, here):
        assert entry["error"] == ""
        assert abs(entry["free_bytes"] - fs.f_bavail * fs.f_frsize) < 256 * 1024**2
        assert entry["size_bytes"] == fs.f_blocks * fs.f_frsize
        assert str(tmp_path.resolve()).startswith(entry["mount"].rstrip("/") + "/")
    assert not want.exists(), "the probe creates nothing"


def test_the_mount_is_the_nearest_parent_mount_point():
    mounts = [("/", "ext4"), ("/var/lib", "xfs"), ("/var/lib/docker-other", "ext4"), ("/data", "ext4")]
    assert box_probe.mount_of("/var/lib/docker", mounts) == ("/var/lib", "xfs")
    assert box_probe.mount_of("/var/lib", mounts) == ("/var/lib", "xfs")
    assert box_probe.mount_of("/var/lib/docker-other/x", mounts) == ("/var/lib/docker-other", "ext4")
    assert box_probe.mount_of("/data/docker", mounts) == ("/data", "ext4")
    assert box_probe.mount_of("/srv", mounts) == ("/", "ext4")


def test_the_mount_table_is_unescaped(tmp_path):
    table = tmp_path / "mounts"
    table.write_text("/dev/root / ext4 rw 0 0\n/dev/sdb1 /mnt/my\\040disk xfs rw 0 0\n")
    assert box_probe.read_mounts(str(table)) == [("/", "ext4"), ("/mnt/my disk", "xfs")]
    assert box_probe.read_mounts(str(tmp_path / "missing")) == []


# --- apt lists -------------------------------------------------------------------------------


def test_apt_lists_present_with_the_age_of_the_newest(tmp_path, monkeypatch):
    lists = tmp_path / "lists"
    (lists / "partial").mkdir(parents=True)
    (lists / "lock").write_text("")
    old = lists / "deb.debian.org_debian_dists_trixie_main_binary-amd64_Packages.lz4"
    new = lists / "deb.debian.org_debian_dists_trixie-updates_main_binary-amd64_Packages"
    old.write_text("x")
    new.write_text("x")
    now = time.time()
    os.utime(old, (now - 7200, now - 7200))
    os.utime(new, (now - 100, now - 100))
    result = probe(monkeypatch, tmp_path, {"apt_lists": True, "apt_lists_dir": str(lists)})
    apt = result["apt_lists"]
    assert apt["present"] is True and apt["count"] == 2 and apt["error"] == ""
    assert 100 <= apt["newest_age"] < 160


def test_apt_lists_emptied_by_an_image_build(tmp_path, monkeypatch):
    lists = tmp_path / "lists"
    (lists / "partial").mkdir(parents=True)
    (lists / "lock").write_text("")
    result = probe(monkeypatch, tmp_path, {"apt_lists": True, "apt_lists_dir": str(lists)})
    assert result["apt_lists"] == {"path": str(lists), "present": False, "count": 0, "newest_age": None, "error": ""}


def test_apt_lists_on_a_box_without_apt(tmp_path, monkeypatch):
    result = probe(monkeypatch, tmp_path, {"apt_lists": True, "apt_lists_dir": str(tmp_path / "none")})
    assert result["apt_lists"]["present"] is False and "cannot read" in result["apt_lists"]["error"]


# --- all at once -----------------------------------------------------------------------------


def test_everything_in_one_call_in_check_mode(tmp_path, monkeypatch):
    bindir = fake_docker(tmp_path, V2)
    with listener() as sock:
        port = sock.getsockname()[1]
        result = probe(monkeypatch, bindir, {
            "compose": True, "docker": True, "disk_paths": [str(tmp_path)], "ports": [{"port": port}],
            "apt_lists": True, "apt_lists_dir": str(tmp_path), "containers": [{"project": "p", "service": "s"}],
            "networks": ["bridge"]}, check_mode=True)
    assert set(result) >= {"compose", "docker", "disk", "ports", "apt_lists", "containers", "networks"}
    assert result["compose"]["v2"] and result["docker"]["answers"] and result["ports"][0]["in_use"]
    assert result["networks"][0]["exists"] and result["containers"][0]["running"] == []


# --- paths, files, users, the login user, packages -------------------------------------------


def test_paths_are_looked_at_without_following_links(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.yaml").write_text("x")
    (home / "config.yaml").chmod(0o600)
    secret = tmp_path / "elsewhere"
    secret.mkdir()
    (home / ".cline").symlink_to(secret)
    (home / "dangling").symlink_to(tmp_path / "nothing")
    result = probe(monkeypatch, tmp_path, {"paths": [str(home / "config.yaml"), str(home / ".cline"),
                                                     str(home / "dangling"), str(home / "missing")]})
    regular, link, dangling, missing = result["paths"]
    me = os.getuid()
    assert regular["isreg"] and not regular["islnk"] and regular["mode"] == "0600" and regular["uid"] == me
    assert regular["target"] is None
    assert link["islnk"] and not link["isdir"] and link["lnk_target"] == str(secret)
    assert link["target"] == {"path": str(secret), "exists": True, "uid": me, "owner": link["owner"]}
    assert dangling["exists"] and dangling["islnk"] and dangling["target"]["exists"] is False
    assert missing["exists"] is False and missing["uid"] is None and missing["owner"] == ""


def test_files_are_read_and_a_missing_one_is_data(tmp_path, monkeypatch):
    (tmp_path / "key").write_text("sk-abc\n")
    big = tmp_path / "big"
    big.write_bytes(b"x" * (box_probe.FILE_LIMIT + 1))
    result = probe(monkeypatch, tmp_path, {"files": [str(tmp_path / "key"), str(tmp_path / "none"), str(big)]})
    key, none, large = result["files"]
    assert key == {"path": str(tmp_path / "key"), "exists": True, "content": "sk-abc\n", "error": ""}
    assert none["exists"] is False and none["content"] == "" and none["error"] == "not found"
    assert large["content"] == "" and "larger than" in large["error"]


def test_users_are_looked_up(tmp_path, monkeypatch):
    import pwd

    me = pwd.getpwuid(os.getuid())
    result = probe(monkeypatch, tmp_path, {"users": [me.pw_name, "no-such-user-llmops"]})
    assert result["users"][me.pw_name] == {"uid": me.pw_uid, "gid": me.pw_gid, "home": me.pw_dir,
                                            "shell": me.pw_shell}
    assert result["users"]["no-such-user-llmops"] is None


def fake_proc(tmp_path, chain):
    """A /proc with processes pid -> (uid, ppid)."""
    proc = tmp_path / "proc"
    for pid, (uid, ppid) in chain.items():
        (proc / str(pid)).mkdir(parents=True)
        (proc / str(pid) / "status").write_text(f"Name:\tx\nPPid:\t{ppid}\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n")
    return str(proc)


def test_the_login_user_under_sudo_su_and_without_become(tmp_path):
    import pwd

    me = pwd.getpwuid(os.getuid()).pw_name
    # sudo says who called it.
    assert box_probe.login_user(env={"SUDO_USER": "admin"}, uid=0) == "admin"
    # su does not: the first process above owned by someone else (the login shell of uid of ours).
    proc = fake_proc(tmp_path, {40: (0, 30), 30: (0, 20), 20: (os.getuid(), 10), 10: (0, 1)})
    assert box_probe.login_user(proc=proc, env={}, uid=0, pid=40) == me
    # Logged in as root: root all the way up.
    proc = fake_proc(tmp_path / "r", {40: (0, 30), 30: (0, 1)})
    assert box_probe.login_user(proc=proc, env={}, uid=0, pid=40) == "root"
    # No become: whoever runs the module.
    assert box_probe.login_user(env={"SUDO_USER": "someone"}, uid=os.getuid()) == me or os.getuid() == 0


DPKG = r"""#!/bin/sh
echo call >> "${0%/dpkg-query}/calls.log"
printf 'nodejs\tii \t20.19.2+dfsg-1\n'
printf 'npm\trc \t9.2.0~ds1-3\n'
printf 'ripgrep\thi \t14.1.1-1\n'
printf 'libkrb5-dev\tiU \t1.21.3-5\n'
echo "dpkg-query: no packages found matching make" >&2
exit 1
"""
RPM = r"""#!/bin/sh
printf 'docker\t25.0.8-1.amzn2023\n'
echo "package containerd is not installed"
exit 1
"""


def test_packages_take_one_dpkg_query(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name, script in (("dpkg-query", DPKG), ("rpm", RPM)):
        (bindir / name).write_text(script)
        (bindir / name).chmod(0o755)
    result = probe(monkeypatch, bindir, {"packages": ["nodejs", "npm", "make", "ripgrep", "libkrb5-dev"]})
    # Installed, removed with its config kept (not installed), unknown, held (installed), half-installed (not).
    assert result["packages"] == {"nodejs": "20.19.2+dfsg-1", "npm": None, "make": None, "ripgrep": "14.1.1-1",
                                  "libkrb5-dev": None}
    assert len((bindir / "calls.log").read_text().splitlines()) == 1


def test_packages_from_rpm_where_there_is_no_dpkg(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "rpm").write_text(RPM)
    (bindir / "rpm").chmod(0o755)
    result = probe(monkeypatch, bindir, {"packages": ["docker", "containerd"]})
    assert result["packages"] == {"docker": "25.0.8-1.amzn2023", "containerd": None}
    result = probe(monkeypatch, tmp_path / "empty", {"packages": ["docker"]})
    assert result["packages"] == {"docker": None}
