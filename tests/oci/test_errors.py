"""The runtime spec's error cases: each fails with exit 1, a message on
stderr that says what to do, the same message as the JSON log's last error
(what containerd reports), and leaves the container as it was (or no
container at all) and no process behind."""

from __future__ import annotations

import json

from brandpy.runtime import cgroups

from .conftest import Bundle, Runc


def test_start_of_a_running_or_stopped_container(runc: Runc, bundle: Bundle):
    runc.ok("run", "-d", "--bundle", str(bundle(["sleep", "30"])), "r")
    assert runc.fails("start", "r") == "cannot start an already running container"
    assert runc.status("r") == "running"
    runc.ok("kill", "r", "KILL")
    runc.wait_status("r", "stopped")
    assert runc.fails("start", "r") == "cannot start a container that has stopped"
    runc.ok("delete", "r")


def test_delete_of_a_running_container_needs_force(runc: Runc, bundle: Bundle):
    runc.ok("run", "-d", "--bundle", str(bundle(["sleep", "30"])), "d")
    message = runc.fails("delete", "d")
    assert message.startswith("cannot delete container d that is not stopped: running")
    assert runc.status("d") == "running"
    runc.ok("delete", "--force", "d")
    assert runc.fails("state", "d") == "container d does not exist"


def test_kill_of_a_stopped_container(runc: Runc, bundle: Bundle):
    runc.ok("run", "-d", "--bundle", str(bundle(["true"])), "k")
    runc.wait_status("k", "stopped")
    # containerd maps this message to "process already finished"
    assert runc.fails("kill", "k", "TERM") == "container not running"
    assert runc.fails("exec", "k", "true") == "cannot exec in a stopped container"
    runc.ok("delete", "k")


def test_missing_bundle_and_missing_config(runc: Runc, tmp_path):
    message = runc.fails("create", "--bundle", str(tmp_path / "nope"), "m")
    assert message.startswith(f"bundle {tmp_path / 'nope'}: no such directory")
    (tmp_path / "empty").mkdir()
    message = runc.fails("create", "--bundle", str(tmp_path / "empty"), "m")
    assert "has no config.json" in message and "brandpy-runc spec" in message
    assert not (runc.root / "m").exists()


def test_malformed_config_json(runc: Runc, bundle: Bundle):
    b = bundle(["true"])
    (b / "config.json").write_text('{"ociVersion": "1.0.2", "process": {"args": ["true"],}}')
    message = runc.fails("create", "--bundle", str(b), "bad")
    assert message == (f"{b / 'config.json'} is not valid JSON: Expecting property name "
                       "enclosed in double quotes at line 1 column 54")
    assert not (runc.root / "bad").exists()


def test_invalid_configs_are_refused_with_the_field_named(runc: Runc, bundle: Bundle):
    cases = [
        ({"process_args": []}, "process.args is empty"),
        ({"process_args": "sh"}, "process.args must be a list"),
        ({"process_cwd": "relative"}, "process.cwd 'relative' must be an absolute path"),
        ({"ociVersion": "0.9"}, "ociVersion '0.9' is not supported"),
        ({"root": {"path": "nowhere"}}, "nowhere: no such directory"),
        ({"mounts": [{"destination": "/x", "type": "nfs", "source": "srv:/x"}]},
         "type 'nfs' at /x is not supported"),
        ({"mounts": [{"destination": "/x", "type": "bind", "source": "/does/not/exist",
                      "options": ["rbind"]}]}, "bind source /does/not/exist for /x does not"),
        ({"annotations": {"org.brandpy.engin": "python"}}, "unknown annotation "
                                                           "org.brandpy.engin"),
        ({"hooks": {"prestart": [{"path": "relative"}]}}, "hooks.prestart[0].path must be an "
                                                          "absolute path"),
        ({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_NOTIFY"}}},
         "unsupported defaultAction 'SCMP_ACT_NOTIFY'"),
        ({"process_rlimits": [{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]},
         "unknown type 'RLIMIT_BOGUS'"),
    ]
    for i, (changes, expected) in enumerate(cases):
        b = bundle(["true"], name=f"b{i}", **changes)
        assert expected in runc.fails("create", "--bundle", str(b), f"c{i}")
        assert not (runc.root / f"c{i}").exists()


def test_a_command_that_is_not_there(runc: Runc, bundle: Bundle):
    message = runc.fails("create", "--bundle", str(bundle(["nosuch"])), "nf")
    # dockerd turns "executable file not found" into exit status 127
    assert message == 'exec: "nosuch": executable file not found in $PATH'
    assert not (runc.root / "nf").exists()


def test_ids_and_unknown_containers(runc: Runc, bundle: Bundle):
    b = bundle(["sleep", "30"])
    assert "invalid container id" in runc.fails("create", "--bundle", str(b), "a/b")
    runc.ok("create", "--bundle", str(b), "dup")
    assert runc.fails("create", "--bundle", str(b), "dup").startswith(
        "container with id dup already exists")
    for command in (["start"], ["kill"], ["delete"], ["pause"], ["exec"], ["ps"]):
        args = command + ["ghost"] + (["true"] if command == ["exec"] else [])
        assert runc.fails(*args) == "container ghost does not exist"
    runc.ok("delete", "--force", "ghost")   # as runc: nothing to do is fine with --force
    runc.ok("delete", "dup")   # created: delete kills the waiting process


def test_a_terminal_needs_a_console_socket(runc: Runc, bundle: Bundle):
    b = bundle(["sh"], process_terminal=True)
    assert "--console-socket" in runc.fails("create", "--bundle", str(b), "t")
    assert not (runc.root / "t").exists()


def test_a_failing_hook_aborts_create_and_runs_poststop(runc: Runc, bundle: Bundle, tmp_path):
    marker = tmp_path / "poststop-ran"
    b = bundle(["true"], hooks={
        "createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "echo no >&2; exit 3"]}],
        "poststop": [{"path": "/bin/sh", "args": ["sh", "-c", f"cat > {marker}"]}]})
    message = runc.fails("create", "--bundle", str(b), "h")
    assert message == "createRuntime hook /bin/sh failed with exit status 3: no"
    assert not (runc.root / "h").exists()
    assert not cgroups.Cgroup.left_by("h").dirs     # the killed monitor's cgroup too
    assert json.loads(marker.read_text())["status"] == "stopped"


def test_unsupported_commands_say_why(runc: Runc, bundle: Bundle):
    runc.ok("run", "-d", "--bundle", str(bundle(["sleep", "30"])), "u")
    assert "no cgroup resource limits" in runc.fails("update", "--resources", "-", "u")
    assert "use events --stats" in runc.fails("events", "u")
    assert "--cap is not supported" in runc.fails("exec", "--cap", "CAP_SYS_ADMIN", "u", "true")
    runc.ok("delete", "--force", "u")
