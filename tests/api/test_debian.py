"""The Debian test image (a debootstrap rootfs) imported with `docker
import` and used through the CLI: a real distribution's binaries, its
users, and a build FROM it."""

from __future__ import annotations

from tests.api.conftest import image_tar


def test_debian_image(daemon, tmp_path):
    daemon.ok("import", "--change", "CMD [\"/bin/bash\"]", str(image_tar("debian")),
              "debian:test", timeout=300)
    out = daemon.ok("run", "--rm", "debian:test", "bash", "-c",
                    "cat /etc/debian_version; id -un; dpkg-query -W -f '${Status}' bash")
    version, user, status = out.splitlines()
    assert version.startswith("12") and user == "root" and status == "install ok installed"
    r = daemon.docker("run", "--rm", "--user", "nobody", "debian:test", "id", "-un")
    assert (r.status, r.out) == (0, "nobody\n"), r
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM debian:test\n"
        "RUN useradd -m app && echo 'print(1)' > /home/app/x && chown app:app /home/app/x\n"
        "USER app\n"
        "WORKDIR /home/app\n"
        "CMD [\"stat\", \"-c\", \"%U:%G %n\", \"x\"]\n")
    daemon.ok("build", "-t", "debian:app", str(ctx), env={"DOCKER_BUILDKIT": "0"}, timeout=300)
    assert daemon.ok("run", "--rm", "debian:app") == "app:app x\n"
    # the RUN changed /etc/passwd in its own copy: the base image is untouched
    assert daemon.docker("run", "--rm", "debian:test", "grep", "^app:", "/etc/passwd"
                         ).status == 1
    daemon.ok("rmi", "debian:app", "debian:test")
