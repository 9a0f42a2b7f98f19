"""The same areas through the docker SDK over the real unix socket:
containers.run (detached and not), logs(stream=True), exec_run,
attach_socket, images.pull/build/load/save, volumes, events."""

from __future__ import annotations

import io
import socket
import tarfile
import threading
import time

import docker
import pytest

from tests.images_store.registries import Registry


def test_version_negotiation(daemon):
    c = docker.from_env(environment={"DOCKER_HOST": daemon.host})
    try:
        assert c.api.api_version == "1.50"
        assert c.ping() is True
        assert c.version()["ApiVersion"] == "1.50"
        # an older client version is served too
        old = docker.DockerClient(base_url=daemon.host, version="1.41")
        assert old.containers.list() == [] or isinstance(old.containers.list(), list)
        old.close()
    finally:
        c.close()


def test_containers_run_attached_and_detached(client):
    out = client.containers.run("busybox", ["sh", "-c", "echo sdk; echo err >&2"], remove=True,
                                stderr=True)
    assert out == b"sdk\nerr\n"
    with pytest.raises(docker.errors.ContainerError) as err:
        client.containers.run("busybox", ["sh", "-c", "echo oops >&2; exit 4"], remove=True)
    assert err.value.exit_status == 4 and b"oops" in err.value.stderr
    c = client.containers.run("busybox", ["sh", "-c", "for i in 1 2 3; do echo line$i; "
                                          "sleep 0.2; done"], detach=True, labels={"sdk": "1"})
    try:
        lines = b"".join(c.logs(stream=True, follow=True))
        assert lines == b"line1\nline2\nline3\n"
        assert c.wait(timeout=20)["StatusCode"] == 0
        c.reload()
        assert c.status == "exited" and c.labels == {"sdk": "1"}
        assert client.containers.list(all=True, filters={"label": "sdk=1"})[0].id == c.id
    finally:
        c.remove(force=True)


def test_exec_run_and_attach_socket(client):
    c = client.containers.run("busybox", ["sh", "-c", "cat"], detach=True, stdin_open=True)
    try:
        res = client.api.exec_create(c.id, ["sh", "-c", "echo $FOO; exit 2"],
                                     environment={"FOO": "bar"})
        out = client.api.exec_start(res["Id"])
        assert out == b"bar\n"
        assert client.api.exec_inspect(res["Id"])["ExitCode"] == 2
        code, (stdout, stderr) = c.exec_run(["sh", "-c", "echo o; echo e >&2"], demux=True)
        assert (code, stdout, stderr) == (0, b"o\n", b"e\n")
        sock = c.attach_socket(params={"stdin": 1, "stdout": 1, "stream": 1})
        raw = sock._sock
        raw.sendall(b"echoed back\n")
        raw.settimeout(10)
        data = b""
        while b"echoed back" not in data:
            chunk = raw.recv(4096)
            assert chunk
            data += chunk
        assert data[:1] == b"\x01"          # a stdout frame, no TTY
        raw.shutdown(socket.SHUT_WR)
        raw.close()
    finally:
        c.remove(force=True)


def test_images_build_save_load(client, tmp_path):
    dockerfile = io.BytesIO(b"FROM busybox\nRUN echo built > /b\nCMD [\"cat\", \"/b\"]\n")
    image, logs = client.images.build(fileobj=dockerfile, tag="sdk-built:1", rm=True)
    assert any("Successfully built" in entry.get("stream", "") for entry in logs)
    assert client.containers.run("sdk-built:1", remove=True) == b"built\n"
    blob = b"".join(image.save(named=True))
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        assert "manifest.json" in tar.getnames()
    client.images.remove("sdk-built:1")
    loaded = client.images.load(blob)
    assert loaded[0].tags == ["sdk-built:1"]
    client.images.remove("sdk-built:1")


def test_volumes(client):
    vol = client.volumes.create("sdk-vol", labels={"k": "v"})
    try:
        assert vol.attrs["Driver"] == "local"
        client.containers.run("busybox", ["sh", "-c", "echo in-vol > /v/f"],
                              volumes={"sdk-vol": {"bind": "/v", "mode": "rw"}}, remove=True)
        out = client.containers.run("busybox", ["cat", "/v/f"],
                                    volumes=["sdk-vol:/v:ro"], remove=True)
        assert out == b"in-vol\n"
        assert [v.name for v in client.volumes.list(filters={"label": "k=v"})] == ["sdk-vol"]
        with pytest.raises(docker.errors.NotFound):
            client.volumes.get("no-such-volume")
    finally:
        vol.remove()


def test_events(client):
    since = time.time()
    seen: list[str] = []

    def collect():
        for ev in client.events(decode=True, filters={"container": "sdk-events"},
                                since=int(since), until=int(since) + 15):
            seen.append(ev["Action"])
            if ev["Action"] == "destroy":
                break

    t = threading.Thread(target=collect)
    t.start()
    time.sleep(0.5)
    client.containers.run("busybox", "true", name="sdk-events", remove=True)
    t.join(20)
    assert seen == ["create", "start", "die", "destroy"], seen


@pytest.fixture(scope="module")
def registry(tmp_path_factory, daemon):
    reg = Registry(tmp_path_factory.mktemp("registry"), netns=daemon.netns and daemon.netns.path)
    yield reg
    reg.stop()


def test_images_pull(client, registry, daemon):
    name = f"{registry.addr}/sdk/bb"
    daemon.ok("tag", "busybox", f"{name}:2")
    daemon.ok("push", f"{name}:2")
    daemon.ok("rmi", f"{name}:2")
    image = client.images.pull(name, tag="2")
    assert f"{name}:2" in image.tags
    with pytest.raises(docker.errors.NotFound):
        client.images.pull(name, tag="nosuch")
    with pytest.raises(docker.errors.NotFound):     # create: no such image; pull: no such tag
        client.containers.run(f"{name}:nosuch", "true", remove=True)
    client.images.remove(f"{name}:2")
