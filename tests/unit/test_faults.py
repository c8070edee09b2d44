import os
import signal
import subprocess
import sys

PROBE = (
    "from shared.faults import fault_point\n"
    "for i in range(3):\n"
    "    fault_point('p')\n"
    "    print(i, flush=True)\n"
)


def run(env):
    return subprocess.run(
        [sys.executable, "-c", PROBE], env={**os.environ, **env}, capture_output=True, text=True
    )


def test_a_process_dies_at_its_fault_point_after_the_passes_it_was_given():
    assert run({}).stdout.split() == ["0", "1", "2"]
    dead = run({"AISLE_FAULT_POINT": "p"})
    assert dead.returncode == -signal.SIGKILL and dead.stdout == ""
    late = run({"AISLE_FAULT_POINT": "p", "AISLE_FAULT_AFTER": "2"})
    assert late.returncode == -signal.SIGKILL and late.stdout.split() == ["0", "1"]
    assert run({"AISLE_FAULT_POINT": "other"}).returncode == 0


def test_a_fault_file_makes_only_one_process_die(tmp_path):
    flag = tmp_path / "die-once"
    flag.touch()
    env = {"AISLE_FAULT_POINT": "p", "AISLE_FAULT_FILE": str(flag)}
    assert run(env).returncode == -signal.SIGKILL
    assert not flag.exists()
    assert run(env).returncode == 0
