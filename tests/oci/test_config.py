"""config.json as brandpy applies it: hooks, annotations, identity,
capabilities, rlimits, mounts, read-only root, seccomp, the network
namespace, and the notes create logs for what it emulates or ignores."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from brandpy.oci.bundle import own_capabilities

from .conftest import Bundle, Runc, runtime_env


def run(runc: Runc, b, cid: str = "c", *global_opts: str) -> str:
    r = runc(*global_opts, "run", "--bundle", str(b), cid)
    assert r.status == 0, r
    return r.out


def hook(log, kind: str) -> dict:
    """A hook that appends its kind and the state it got to a JSON-lines log."""
    return {"path": "/bin/sh",
            "args": ["sh", "-c", f'printf "%s %s\\n" {kind} "$(cat)" >> {log}']}


def test_hooks_run_in_order_with_the_state_on_stdin(runc: Runc, bundle: Bundle, tmp_path):
    log = tmp_path / "hooks.log"
    hooks = {kind: [hook(log, kind)] for kind in ("prestart", "createRuntime",
                                                  "createContainer", "poststart", "poststop")}
    # startContainer runs inside the container: /tmp is the rootfs's
    hooks["startContainer"] = [{"path": "/bin/sh", "args": [
        "sh", "-c", '{ cat; echo; echo "$HOOKVAR"; } > /tmp/start-state'],
        "env": ["HOOKVAR=set"]}]
    b = bundle(["sh", "-c", "test -f /tmp/start-state && echo hooked"], hooks=hooks,
               annotations={"k": "v"})
    runc.ok("create", "--bundle", str(b), "h")
    assert [line.split()[0] for line in log.read_text().splitlines()] == [
        "prestart", "createRuntime", "createContainer"]
    runc.ok("start", "h")
    runc.wait_status("h", "stopped")
    runc.ok("delete", "h")
    lines = [line.split(" ", 1) for line in log.read_text().splitlines()]
    assert [k for k, _ in lines] == ["prestart", "createRuntime", "createContainer",
                                     "poststart", "poststop"]
    states = {k: json.loads(v) for k, v in lines}
    assert {k: s["status"] for k, s in states.items()} == {
        "prestart": "creating", "createRuntime": "creating", "createContainer": "creating",
        "poststart": "running", "poststop": "stopped"}
    assert all(s["id"] == "h" and s["bundle"] == str(b) and s["annotations"] == {"k": "v"}
               for s in states.values())
    assert states["prestart"]["pid"] > 0 and states["poststop"]["pid"] == 0
    inside = (b / "rootfs" / "tmp" / "start-state").read_text().splitlines()
    assert json.loads(inside[0])["status"] == "created" and inside[1] == "set"


def test_annotations_set_the_kernel_personality(runc: Runc, bundle: Bundle):
    b = bundle(["uname", "-r"], annotations={"org.brandpy.kernel-release": "4.4.0-oci"})
    assert run(runc, b) == "4.4.0-oci\n"
    # the runtime-wide default (dockerd's runtimeArgs), overridden per container
    assert run(runc, bundle(["uname", "-r"], name="b2"), "c2",
               "--kernel-release", "5.10.0-global") == "5.10.0-global\n"


def test_hostname_user_and_additional_gids(runc: Runc, bundle: Bundle):
    b = bundle(["sh", "-c", "hostname; id -u; id -g; id -G"], hostname="oci-host",
               process_user={"uid": 1000, "gid": 1000, "additionalGids": [2000, 3000]})
    assert run(runc, b).split() == ["oci-host", "1000", "1000", "1000", "2000", "3000"]


def test_a_non_root_user_reaches_a_rootfs_below_closed_directories(runc: Runc, bundle: Bundle,
                                                                     tmp_path):
    """As under dockerd (data-root 0710, exec-root 0700): the monitor's
    private mount namespace gives the container's files an open path."""
    assert tmp_path.stat().st_mode & 0o077 == 0
    b = bundle(["sh", "-c", "id -u; cat /etc/hostname; ls /bin/sh"], hostname="closed",
               under=tmp_path, process_user={"uid": 65534, "gid": 65534})
    assert run(runc, b).split() == ["65534", "closed", "/bin/sh"]


def test_capabilities_are_the_effective_set(runc: Runc, bundle: Bundle):
    caps = {k: ["CAP_CHOWN", "CAP_KILL"] for k in ("bounding", "effective", "permitted")}
    b = bundle(["sh", "-c", "grep CapEff /proc/self/status"], process_capabilities=caps)
    assert run(runc, b).split() == ["CapEff:", f"{1 << 0 | 1 << 5:016x}"]


def test_rlimits_soft_applied_hard_above_ours_refused(runc: Runc, bundle: Bundle):
    b = bundle(["sh", "-c", "ulimit -n; ulimit -Hn"],
               process_rlimits=[{"type": "RLIMIT_NOFILE", "soft": 256, "hard": 512}])
    assert run(runc, b).split() == ["256", "512"]
    if "CAP_SYS_RESOURCE" in own_capabilities():
        return   # raising works here: nothing to refuse
    b = bundle(["true"], name="b2",
               process_rlimits=[{"type": "RLIMIT_NOFILE", "soft": 1 << 30, "hard": 1 << 30}])
    message = runc.fails("create", "--bundle", str(b), "c2")
    assert "needs CAP_SYS_RESOURCE" in message and "lower it in config.json" in message


def test_mounts_bind_read_only_and_tmpfs(runc: Runc, bundle: Bundle, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "in").write_text("from the host\n")
    b = bundle(["sh", "-c", "cat /data/in; echo x > /data/out || echo ro; "
                "echo y > /run/f && cat /run/f; ls -ld /run | cut -c1-10"],
               mounts=[{"destination": "/data", "type": "bind", "source": str(data),
                        "options": ["rbind", "ro"]},
                       {"destination": "/run", "type": "tmpfs", "source": "tmpfs",
                        "options": ["nosuid", "mode=755"]},
                       {"destination": "/proc", "type": "proc", "source": "proc"}])
    out = run(runc, b).splitlines()
    assert out == ["from the host", "ro", "y", "drwxr-xr-x"]
    assert not (data / "out").exists()
    notes = [json.loads(line)["msg"] for line in runc.log.read_text().splitlines()]
    assert any(n.startswith("tmpfs at /run: a private directory") for n in notes)
    assert any("/proc (proc): brandpy's emulated /proc" in n for n in notes)


def test_devices_are_the_hosts_nodes(runc: Runc, bundle: Bundle):
    """linux.devices: the host's node of that type and number, found in
    /dev, at the container path; one the host lacks is logged."""
    b = bundle(["sh", "-c", "ls -l /dev/myfull | cut -c1; echo x > /dev/myfull; "
                "ls /dev/nothing 2>&1; exit 0"],
               linux={"devices": [
                   {"path": "/dev/myfull", "type": "c", "major": 1, "minor": 7},
                   {"path": "/dev/null", "type": "c", "major": 1, "minor": 3},
                   {"path": "/dev/nothing", "type": "c", "major": 4095, "minor": 4095}]})
    r = runc("run", "--bundle", str(b), "c")
    assert r.out.splitlines()[0] == "c" and "No space left on device" in r.err, r
    assert "/dev/nothing: No such file" in r.out, r
    notes = [json.loads(line)["msg"] for line in runc.log.read_text().splitlines()]
    assert any(n.startswith("device /dev/nothing not created") for n in notes), notes
    assert not any("/dev/null" in n for n in notes), notes


def test_read_only_root(runc: Runc, bundle: Bundle):
    b = bundle(["sh", "-c", "touch /x 2>&1; touch /tmp/y 2>&1; exit 0"],
               root={"path": "rootfs", "readonly": True})
    assert run(runc, b).count("Read-only file system") == 2


def test_seccomp_profile_from_config(runc: Runc, bundle: Bundle):
    seccomp = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                             "errnoRet": 13}]}
    b = bundle(["sh", "-c", "mkdir /tmp/d 2>&1; exit 0"], linux={"seccomp": seccomp})
    assert "Permission denied" in run(runc, b)


def test_a_new_network_namespace_as_root(runc: Runc, bundle: Bundle):
    """A network namespace config.json asks for: the container sees only lo."""
    b = bundle(["sh", "-c", "cat /proc/net/dev"])
    devices = [line.split(":")[0].strip() for line in run(runc, b).splitlines()[2:]]
    assert devices == ["lo"]


def test_oom_score_and_preserved_fds(runc: Runc, bundle: Bundle, tmp_path):
    b = bundle(["sh", "-c", "cat /proc/self/oom_score_adj; echo to-fd3 >&3"],
               process_oomScoreAdj=500)
    r, w = os.pipe()
    # the runtime gets the pipe as fd 3, as containerd passes ExtraFiles
    as_fd3 = "import os, sys; os.dup2(int(sys.argv[1]), 3); os.execv(sys.argv[2], sys.argv[2:])"
    p = subprocess.run([sys.executable, "-c", as_fd3, str(w),
                        *runc.cmd("run", "--preserve-fds", "1", "--bundle", str(b), "o")],
                       pass_fds=(w,), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       env=runtime_env())
    os.close(w)
    assert (p.returncode, p.stdout) == (0, "500\n"), p
    assert os.read(r, 100) == b"to-fd3\n"
    os.close(r)


def test_the_bundles_etc_files_are_what_the_container_sees(runc: Runc, bundle: Bundle,
                                                            tmp_path):
    # dockerd and containerd write /etc/hosts (with --add-host's entries),
    # /etc/resolv.conf and /etc/hostname and bind them in: they win over
    # brandpy's own, under either engine, for reads, writes and stat
    files = {"hosts": "127.0.0.1\tlocalhost\n10.1.2.3\tadded.example\n",
             "resolv.conf": "nameserver 10.9.9.9\nsearch example\n",
             "hostname": "bundle-host\n"}
    mounts = [{"destination": f"/etc/{name}", "type": "bind", "source": str(tmp_path / name),
               "options": ["rbind", "rprivate"]} for name in files]
    for engine in ("native", "python"):
        for name, text in files.items():
            (tmp_path / name).write_text(text)
        b = bundle(["sh", "-c", "cat /etc/hosts /etc/resolv.conf /etc/hostname; "
                    "wc -c < /etc/hostname; echo 10.4.4.4 more >> /etc/hosts"],
                   name=f"b-{engine}", hostname="other", mounts=mounts,
                   annotations={"org.brandpy.engine": engine})
        assert run(runc, b, f"c-{engine}") == "".join(files.values()) + "12\n", engine
        assert (tmp_path / "hosts").read_text() == files["hosts"] + "10.4.4.4 more\n", engine


def test_namespace_notes_say_what_is_made_joined_and_ignored(runc: Runc, bundle: Bundle):
    """An ipc or uts namespace given by path is not joined: the spawner
    makes the container new ones (native/spawner.c), and the notes say so;
    before, an ipc path was said to share the host's IPC and uts and mount
    to be only emulated. The host's message queue is not the container's."""
    made = subprocess.run(["ipcmk", "-Q"], capture_output=True, text=True, check=True)
    queue = made.stdout.split()[-1]
    try:
        namespaces = [{"type": "pid"}, {"type": "mount"}, {"type": "uts", "path": "/proc/1/ns/uts"},
                      {"type": "ipc", "path": "/proc/1/ns/ipc"}, {"type": "cgroup"}]
        b = bundle(["sh", "-c", "hostname; cat /proc/sysvipc/msg"], hostname="inside",
                   linux={"namespaces": namespaces})
        out = run(runc, b).splitlines()
    finally:
        subprocess.run(["ipcrm", "-q", queue], check=True)
    assert out[0] == "inside"
    assert not [line for line in out[2:] if line.split()[1:2] == [queue]], out
    notes = [json.loads(line)["msg"] for line in runc.log.read_text().splitlines()]
    assert "ipc namespace /proc/1/ns/ipc not joined (brandpy joins no ipc namespace by path): " \
        "the container gets a new kernel namespace" in notes, notes
    assert any(n.startswith("uts namespace /proc/1/ns/uts not joined") and
               n.endswith("a new kernel namespace; hostname and domainname emulated")
               for n in notes), notes
    assert "namespaces honoured: pid (a new kernel namespace; the entrypoint is PID 1 and only " \
        "the container's processes are visible); mount (a new kernel namespace; the mount " \
        "table emulated, by path translation)" in notes, notes
    assert any(n.startswith("cgroup namespace not isolated") for n in notes), notes
    assert not any("shares the host's ipc" in n or "(emulated:" in n for n in notes), notes
