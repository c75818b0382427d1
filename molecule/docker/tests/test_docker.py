"""What a user checks on a dev box after the docker role ran (Debian 13, distribution source)."""

from __future__ import annotations

import json

import pytest

IMAGE = "docker-role-verify:1"
PROJECT = "docker-role-verify"


def test_service_is_running_and_enabled(host):
    service = host.service("docker")
    assert service.is_running
    assert service.is_enabled


def test_docker_compose_is_v2(host):
    version = host.check_output("docker compose version --short").strip().lstrip("v")
    assert int(version.split(".")[0]) >= 2, version


def test_buildx_is_installed(host):
    assert host.run("docker buildx version").rc == 0


def test_daemon_json_holds_the_defaults(host):
    config = host.file("/etc/docker/daemon.json")
    assert config.user == "root"
    assert config.mode == 0o644
    assert json.loads(config.content_string) == {
        "live-restore": True,
        "log-driver": "json-file",
        "log-opts": {"max-file": "3", "max-size": "10m"},
    }


def test_running_daemon_uses_that_config(host):
    with host.sudo():
        info = json.loads(host.check_output("docker info --format '{{json .}}'"))
    assert info["LiveRestoreEnabled"] is True
    assert info["LoggingDriver"] == "json-file"


def test_admin_uses_docker_without_sudo(host):
    assert "docker" in host.user("admin").groups
    # A fresh SSH session as admin (not root): the group membership is what lets this work.
    assert host.user().name == "admin"
    result = host.run("docker ps --quiet")
    assert result.rc == 0, result.stderr


@pytest.fixture(scope="module")
def image(host):
    # No registry here: a one-binary image from the target's own dash and the libraries it needs.
    build = (
        "set -e; d=$(mktemp -d); "
        "for f in /usr/bin/dash $(ldd /usr/bin/dash | grep -o '/[^ ]*'); do "
        'mkdir -p "$d$(dirname "$f")"; cp -L "$f" "$d$f"; done; '
        f'tar -C "$d" -c . | docker import --change "CMD [\\"/usr/bin/dash\\"]" - {IMAGE} >/dev/null; rm -rf "$d"'
    )
    host.run_expect([0], build)
    yield IMAGE
    host.run(f"docker compose -p {PROJECT} -f /tmp/{PROJECT}.yaml down --remove-orphans; docker image rm -f {IMAGE}")
    host.run(f"rm -f /tmp/{PROJECT}.yaml")


def test_a_container_runs(host, image):
    out = host.check_output(f"docker run --rm {image} /usr/bin/dash -c 'read c </proc/1/comm; echo hello from $c'")
    assert out.strip() == "hello from dash"


def test_docker_compose_runs_a_project(host, image):
    compose = f"services:\n  hello:\n    image: {image}\n    command: [/usr/bin/dash, -c, 'echo compose works']\n"
    host.run_expect([0], f"printf '%s' \"{compose}\" > /tmp/{PROJECT}.yaml")
    out = host.check_output(f"docker compose -p {PROJECT} -f /tmp/{PROJECT}.yaml run --rm hello")
    assert "compose works" in out
