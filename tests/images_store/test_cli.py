"""`brandpy image …` through a small argparse harness, as the lead's CLI will mount it."""
from __future__ import annotations

import argparse
import json
import re

import pytest

from brandpy.images import cli


def run(capsys, *argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="brandpy")
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    rc = args.func(args)
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_image_commands(capsys, tmp_path, busybox_tar):
    store = ["image", "--store", str(tmp_path / "store")]
    rc, out, _ = run(capsys, *store, "import", str(busybox_tar), "bb:1", "-c", "CMD /bin/sh", "-m", "hi")
    assert rc == 0 and out.startswith("sha256:") and len(out.strip()) == 71
    image_id = out.strip()
    rc, out, _ = run(capsys, *store, "tag", "bb:1", "localhost:5000/x/bb:2")
    rc, out, _ = run(capsys, *store, "ls")
    lines = out.splitlines()
    assert lines[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert any(line.split()[:3] == ["bb", "1", image_id[7:19]] for line in lines[1:])
    assert any(line.startswith("localhost:5000/x/bb   2") for line in lines[1:])
    assert re.search(r"\b(Less than a second|\d+ seconds?) ago\b", lines[1]), lines[1]
    assert lines[1].split()[-1].endswith("MB")
    rc, out, _ = run(capsys, *store, "ls", "-q")
    assert out == image_id[7:19] + "\n"
    rc, out, _ = run(capsys, *store, "inspect", "bb:1")
    doc = json.loads(out)[0]
    assert doc["Id"] == image_id and doc["Config"]["Cmd"] == ["/bin/sh", "-c", "/bin/sh"]
    assert sorted(doc["RepoTags"]) == ["bb:1", "localhost:5000/x/bb:2"] and doc["Comment"] == "hi"
    saved = tmp_path / "bb.tar"
    assert run(capsys, *store, "save", "-o", str(saved), "bb:1")[0] == 0
    other = ["image", "--store", str(tmp_path / "other")]
    rc, out, _ = run(capsys, *other, "load", "-i", str(saved))
    assert out == "Loaded image: bb:1\n"
    assert run(capsys, *store, "export-oci", "bb:1", "-o", str(tmp_path / "oci"))[0] == 0
    rc, out, _ = run(capsys, *other, "import-oci", str(tmp_path / "oci"))
    assert out == "Loaded image: bb:1\n"
    rc, out, _ = run(capsys, *store, "rm", "bb:1")
    assert out == "Untagged: bb:1\n"
    rc, out, _ = run(capsys, *store, "rm", "localhost:5000/x/bb:2")
    assert out == f"Untagged: localhost:5000/x/bb:2\nDeleted: {image_id}\n"
    rc, out, err = run(capsys, *store, "inspect", "nope")
    assert rc == 1 and "No such image: nope" in err and json.loads(out) == []
    rc, out, err = run(capsys, *store, "rm", "nope")
    assert rc == 1 and "No such image: nope" in err


def test_prune_and_errors(capsys, tmp_path, busybox_tar):
    store = ["image", "--store", str(tmp_path / "store")]
    run(capsys, *store, "import", str(busybox_tar))
    rc, out, _ = run(capsys, *store, "prune", "-f")
    assert out.startswith("Deleted Images:\ndeleted: sha256:") and "Total reclaimed space: " in out
    rc, out, err = run(capsys, *store, "import", str(tmp_path / "missing.tar"))
    assert rc == 1 and "No such file" in err
    rc, out, err = run(capsys, *store, "tag", "nope", "x:1")
    assert rc == 1 and "No such image: nope" in err


def test_human_units():
    assert [cli.human_size(n) for n in (0, 999, 1200, 4_261_234, 2.5e9)] == ["0B", "999B", "1.2kB", "4.26MB", "2.5GB"]
    assert [cli.human_duration(s) for s in (0.5, 1, 30, 70, 300, 3600, 7200, 3 * 86400, 30 * 86400)] == [
        "Less than a second", "1 second", "30 seconds", "About a minute", "5 minutes", "About an hour",
        "2 hours", "3 days", "4 weeks"]


@pytest.mark.parametrize("argv", [["image"], ["image", "bogus"]])
def test_usage_errors(capsys, argv):
    parser = argparse.ArgumentParser(prog="brandpy")
    cli.register(parser.add_subparsers(dest="command", required=True))
    with pytest.raises(SystemExit):
        parser.parse_args(argv)
