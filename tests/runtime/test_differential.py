"""The same shell script under brandpy (as root and as uid 65534) and
under chroot (as root) on the same rootfs prints the same thing."""

import os
import subprocess
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="chroot needs root")

# Output must not depend on PIDs, times or who runs it.
SCRIPT = r"""
set -u
d=/tmp/dt-$1; rm -rf $d; mkdir -p $d && cd $d || exit 99
echo hello > a.txt; cat a.txt
mkdir -p d1/d2/d3; mv a.txt d1/b.txt; ls d1
ln -s d1/b.txt rel; ln -s $d/d1/b.txt abs; cat rel abs; readlink rel abs
ln d1/b.txt hard; ls -i d1/b.txt hard | awk '{print $1}' | uniq | wc -l
rm rel abs; ls
find . | sort
tar cf ../t-$1.tar d1 && mkdir x && tar xf ../t-$1.tar -C x && find x | sort && rm ../t-$1.tar
sed -e 's/hello/bye/' d1/b.txt
grep -c hello d1/b.txt; grep -q nothing d1/b.txt; echo "grep none $?"
printf 'c\nb\na\n' | sort | tr a-z A-Z | head -2
echo "pipe: $(cat d1/b.txt | wc -c)"
(cd d1 && pwd && exit 3); echo "subshell $?"
sleep 0.3 & p1=$!; sleep 0.1 & p2=$!; wait $p2; echo "w2 $?"; wait $p1; echo "w1 $?"
sleep 10 & p=$!; kill $p; wait $p 2>/dev/null; echo "killed $?"
sh -c 'exit 42'; echo "child $?"
x=$( (echo inner; exit 5) ); echo "$x $?"
echo $(( 6 * 7 )) > calc; cat calc
test -d d1/d2 && echo isdir; test -e nope || echo nofile
mv d1 renamed; ls; cd renamed/d2/d3 && pwd && cd ../../..
chmod 600 calc; ls -l calc | cut -c1-10
for i in 1 2 3; do echo "loop $i"; done | tail -1
cd / && rm -rf $d && echo cleaned
"""


def run_chroot(rootfs: Path, script: str, arg: str) -> subprocess.CompletedProcess:
    return subprocess.run(["chroot", str(rootfs), "/bin/sh", "-c", script, "sh", arg],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("image", ["busybox", "debian"])
def test_script_matches_chroot(brandpy, image, busybox, debian_shared):
    rootfs = busybox if image == "busybox" else debian_shared
    tag = uuid.uuid4().hex[:8]
    native = run_chroot(rootfs, SCRIPT, "chroot" + tag)
    assert native.returncode == 0, native.stderr
    mine = brandpy(rootfs, ["/bin/sh", "-c", SCRIPT, "sh", "bp" + tag])
    assert mine.err == native.stderr
    assert mine.out == native.stdout.replace("chroot" + tag, "bp" + tag)
    assert mine.status == native.returncode
