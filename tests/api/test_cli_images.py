"""Images and builds through the real docker CLI: classic-builder builds
(multi-stage, FROM scratch, cache, failures), save | load, tag, rmi,
commit, history, prune, events, system df, and pull/push against Debian's
docker-registry on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import tarfile
import threading
import time
from pathlib import Path

import pytest

from tests.images_store.registries import Registry

BUILD_ENV = {"DOCKER_BUILDKIT": "0"}

MULTI_STAGE = """\
# a comment
ARG BASE=busybox
FROM $BASE AS builder
ARG GREETING=hello
WORKDIR /src
COPY hello.txt ./
RUN echo "$GREETING from the builder" > out.txt \\
 && cat hello.txt >> out.txt
COPY --chown=nobody:nogroup dir/ /src/dir/
RUN stat -c '%U %a' /src/dir/file > owner.txt

FROM scratch
COPY --from=builder /bin/busybox /bin/busybox
COPY --from=builder /src/out.txt /src/owner.txt /data/
ENV PATH=/bin GREETING="hi there"
LABEL org.example.kind=test
EXPOSE 8080/tcp
WORKDIR /data
USER 1000:1000
ENTRYPOINT ["/bin/busybox"]
CMD ["sh", "-c", "cat out.txt owner.txt; echo $GREETING; id -u; pwd"]
"""


def write_context(path: Path, dockerfile: str) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "Dockerfile").write_text(dockerfile)
    (path / "hello.txt").write_text("context file\n")
    (path / "dir").mkdir(exist_ok=True)
    (path / "dir" / "file").write_text("x\n")
    (path / "secret.log").write_text("must not be sent\n")
    (path / ".dockerignore").write_text("*.log\n")
    return path


def test_multi_stage_build_then_run(daemon, tmp_path):
    ctx = write_context(tmp_path / "ctx", MULTI_STAGE)
    r = daemon.docker("build", "-t", "multi:test", "--build-arg", "GREETING=howdy", str(ctx),
                      env=BUILD_ENV, timeout=120)
    assert r.status == 0, r
    assert "Step 1/18 : ARG BASE=busybox" in r.out
    assert "Successfully tagged multi:test" in r.out
    out = daemon.ok("run", "--rm", "multi:test")
    assert out == ("howdy from the builder\ncontext file\nnobody 644\nhi there\n1000\n"
                   "/data\n"), out
    info = json.loads(daemon.ok("image", "inspect", "multi:test"))[0]
    cfg = info["Config"]
    assert cfg["Entrypoint"] == ["/bin/busybox"] and cfg["User"] == "1000:1000"
    assert cfg["Labels"] == {"org.example.kind": "test"}
    assert cfg["ExposedPorts"] == {"8080/tcp": {}}
    assert len(info["RootFS"]["Layers"]) == 2          # two COPY steps on scratch
    # an unchanged rebuild is served from the cache, and quick
    started = time.time()
    again = daemon.docker("build", "-t", "multi:test", "--build-arg", "GREETING=howdy",
                          str(ctx), env=BUILD_ENV, timeout=120)
    assert again.status == 0 and again.out.count("Using cache") >= 15, again
    assert time.time() - started < 10
    quiet = daemon.docker("build", "-q", "--build-arg", "GREETING=howdy", str(ctx),
                          env=BUILD_ENV)
    assert quiet.out.strip() == info["Id"], quiet
    # a changed file invalidates the COPY and what follows
    (ctx / "hello.txt").write_text("changed\n")
    third = daemon.docker("build", "-t", "multi:test", "--build-arg", "GREETING=howdy",
                          str(ctx), env=BUILD_ENV, timeout=120)
    assert third.status == 0 and "Running in" in third.out
    assert "changed" in daemon.ok("run", "--rm", "multi:test")
    daemon.ok("rmi", "multi:test")


def test_build_failure_exit_code_and_dockerignore(daemon, tmp_path):
    ctx = write_context(tmp_path / "ctx", "FROM busybox\nCOPY . /ctx/\n"
                        "RUN ls /ctx > /list\nRUN echo failing; exit 3\n")
    r = daemon.docker("build", str(ctx), env=BUILD_ENV)
    assert r.status == 3, r
    assert "failing" in r.out and "returned a non-zero code: 3" in r.err
    ok = write_context(tmp_path / "ok", "FROM busybox\nCOPY . /ctx/\nCMD [\"ls\", \"/ctx\"]\n")
    daemon.ok("build", "-t", "ign:1", str(ok), env=BUILD_ENV)
    listing = daemon.ok("run", "--rm", "ign:1").split()
    assert "hello.txt" in listing and "secret.log" not in listing
    daemon.ok("rmi", "ign:1")
    bad = write_context(tmp_path / "bad", "FROM busybox\nFROBNICATE x\n")
    r = daemon.docker("build", str(bad), env=BUILD_ENV)
    assert r.status != 0 and "unknown instruction: FROBNICATE" in r.err, r
    missing = write_context(tmp_path / "missing", "FROM busybox\nCOPY nope.txt /\n")
    r = daemon.docker("build", str(missing), env=BUILD_ENV)
    assert r.status != 0 and "nope.txt" in r.err, r
    # failed build containers stay for inspection, as with Docker's rm=true
    leftovers = daemon.ok("ps", "-aq", "--filter", "label=com.docker.build").split()
    if leftovers:
        daemon.ok("rm", "-f", *leftovers)


def test_save_load_tag_rmi_history_commit(daemon, tmp_path):
    daemon.ok("tag", "busybox", "saved:1")
    archive = tmp_path / "saved.tar"
    daemon.ok("save", "-o", str(archive), "saved:1")
    daemon.ok("rmi", "saved:1")
    assert daemon.docker("image", "inspect", "saved:1").status == 1
    loaded = daemon.ok("load", "-i", str(archive))
    assert "Loaded image: saved:1" in loaded
    assert daemon.ok("run", "--rm", "saved:1", "echo", "from load") == "from load\n"
    # save | load through a pipe, as users do
    saver = subprocess.run(["docker", "-H", daemon.host, "save", "saved:1"], capture_output=True)
    assert saver.returncode == 0 and saver.stdout[:512].count(b"\0") > 0
    assert "saved:1" in daemon.ok("load", input=saver.stdout)
    cid = daemon.ok("run", "-d", "busybox", "sh", "-c", "echo made > /made; sleep 60").strip()
    try:
        time.sleep(0.5)
        image_id = daemon.ok("commit", "-c", "CMD [\"cat\", \"/made\"]", "-m", "note", cid,
                             "committed:1").strip()
        assert image_id.startswith("sha256:")
    finally:
        daemon.ok("rm", "-f", cid)
    assert daemon.ok("run", "--rm", "committed:1") == "made\n"
    history = daemon.ok("history", "--no-trunc", "--format", "{{.Comment}}", "committed:1")
    assert history.splitlines()[0] == "note"
    daemon.ok("rmi", "committed:1", "saved:1")


def test_image_prune_and_system_df(daemon, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo dangling > /d\n")
    daemon.ok("build", "-t", "prune-me:1", str(ctx), env=BUILD_ENV)
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo dangling-2 > /d\n")
    daemon.ok("build", "-t", "prune-me:1", str(ctx), env=BUILD_ENV)   # the first is dangling
    dangling = daemon.ok("images", "-q", "--filter", "dangling=true").split()
    assert dangling
    out = daemon.ok("image", "prune", "-f")
    assert "Total reclaimed space" in out
    assert daemon.ok("images", "-q", "--filter", "dangling=true") == ""
    df = daemon.ok("system", "df", "--format", "{{.Type}} {{.TotalCount}}").splitlines()
    assert df[0].startswith("Images ") and int(df[0].split()[1]) >= 2
    daemon.ok("rmi", "prune-me:1")


def test_events_while_a_command_runs(daemon):
    proc = subprocess.Popen(["docker", "-H", daemon.host, "events", "--format",
                             "{{.Type}} {{.Action}}", "--filter", "type=container"],
                            stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        daemon.ok("run", "--rm", "--name", "ev", "busybox", "true")
        lines: list[str] = []
        reader = threading.Thread(target=lambda: [lines.append(proc.stdout.readline().strip())
                                                  for _ in range(4)])
        reader.start()
        reader.join(10)
        assert lines[:4] == ["container create", "container attach", "container start",
                             "container die"], lines
    finally:
        proc.kill()
        proc.wait()
    since = daemon.ok("events", "--since", "1m", "--until", str(int(time.time()) + 1),
                      "--filter", "container=ev", "--format", "{{.Action}}").split()
    assert "destroy" in since


@pytest.fixture(scope="module")
def registry(tmp_path_factory, daemon):
    reg = Registry(tmp_path_factory.mktemp("registry"), netns=daemon.netns and daemon.netns.path)
    yield reg
    reg.stop()


def test_push_and_pull_local_registry(daemon, registry):
    name = f"{registry.addr}/brandpy/bb:1"
    daemon.ok("tag", "busybox", name)
    push = daemon.docker("push", name)
    assert push.status == 0 and "digest: sha256:" in push.out, push
    daemon.ok("rmi", name)
    pull = daemon.docker("pull", name)
    assert pull.status == 0 and "Downloaded newer image" in pull.out, pull
    assert daemon.ok("run", "--rm", name, "echo", "pulled") == "pulled\n"
    # as dockerd, the listing keeps only the references that match: the repo's
    # tag and digest, not the busybox:latest tag of the same image
    digests = daemon.ok("images", "--digests", "--format", "{{.Tag}} {{.Digest}}",
                        name.rsplit(":", 1)[0])
    assert digests.startswith("1 sha256:") and digests.count("\n") == 1, digests
    assert "Image is up to date" in daemon.ok("pull", name)
    missing = daemon.docker("pull", f"{registry.addr}/brandpy/nosuch:1")
    assert missing.status == 1 and "not found" in missing.err, missing
    # docker run pulls what is missing
    daemon.ok("rmi", name)
    r = daemon.docker("run", "--rm", name, "echo", "auto-pulled")
    assert r.status == 0 and r.out == "auto-pulled\n", r
    assert "Unable to find image" in r.err
    daemon.ok("rmi", name)


def test_build_instructions(daemon, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    payload = tmp_path / "payload"
    (payload / "inner").mkdir(parents=True)
    (payload / "inner" / "f").write_text("from the archive\n")
    with tarfile.open(ctx / "payload.tar.gz", "w:gz") as tar:
        tar.add(payload, arcname=".")
    (ctx / "script.sh").write_text("echo script ran\n")
    (ctx / "Dockerfile").write_text(
        "FROM busybox\n"
        "SHELL [\"/bin/sh\", \"-e\", \"-c\"]\n"
        "ADD payload.tar.gz /opt/\n"
        "COPY --chmod=0750 script.sh /usr/local/bin/script\n"
        "RUN test \"$(stat -c %a /usr/local/bin/script)\" = 750\n"
        "VOLUME /data\n"
        "STOPSIGNAL SIGINT\n"
        "HEALTHCHECK --interval=5s CMD true\n"
        "ONBUILD RUN echo triggered > /onbuild\n"
        "CMD cat /opt/inner/f; sh /usr/local/bin/script\n")
    daemon.ok("build", "-t", "instr:1", str(ctx), env=BUILD_ENV)
    info = json.loads(daemon.ok("image", "inspect", "instr:1"))[0]["Config"]
    assert info["Volumes"] == {"/data": {}} and info["StopSignal"] == "SIGINT"
    assert info["Shell"] == ["/bin/sh", "-e", "-c"]
    assert info["Healthcheck"]["Test"] == ["CMD-SHELL", "true"]
    assert info["OnBuild"] == ["RUN echo triggered > /onbuild"]
    run = daemon.docker("run", "--rm", "instr:1")
    assert run.out == "from the archive\nscript ran\n", run
    assert "Healthcheck" not in run.err     # run, so no warning
    child = tmp_path / "child"
    child.mkdir()
    (child / "Dockerfile").write_text("FROM instr:1\nCMD [\"cat\", \"/onbuild\"]\n")
    r = daemon.docker("build", "-t", "instr:child", str(child), env=BUILD_ENV)
    assert "Executing 1 build trigger" in r.out, r
    assert daemon.ok("run", "--rm", "instr:child") == "triggered\n"
    daemon.ok("rmi", "instr:child", "instr:1")


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory, daemon):
    reg = Registry(tmp_path_factory.mktemp("registry-auth"), htpasswd=("alice", "s3cret"),
                   netns=daemon.netns and daemon.netns.path)
    yield reg
    reg.stop()


def test_login_push_pull_build_with_basic_auth(daemon, auth_registry, tmp_path):
    host = auth_registry.addr
    bad = daemon.docker("login", host, "-u", "alice", "--password-stdin", input="wrong\n")
    assert bad.status == 1 and "incorrect username or password" in bad.err, bad
    daemon.ok("login", host, "-u", "alice", "--password-stdin", input="s3cret\n")
    name = f"{host}/priv/bb:1"
    daemon.ok("tag", "busybox", name)
    daemon.ok("push", name)
    daemon.ok("rmi", name)
    daemon.ok("pull", name)
    daemon.ok("rmi", name)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {name}\nCMD [\"echo\", \"private base\"]\n")
    daemon.ok("build", "-t", "from-private:1", str(ctx), env=BUILD_ENV)   # X-Registry-Config
    assert daemon.ok("run", "--rm", "from-private:1") == "private base\n"
    daemon.ok("rmi", "from-private:1", name)
    daemon.ok("logout", host)
