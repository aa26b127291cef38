"""The one PID helper: alive, stop (with a fallback signal), zombies count as gone."""

from __future__ import annotations

import signal
import subprocess
import sys

from cloisonne.procs import alive, read_pid, stop_pid


def test_stop_a_process_that_ignores_the_first_signal(tmp_path) -> None:
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(1, flush=True); time.sleep(60)"  # noqa: E501
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline()  # its handler is in place
    (tmp_path / "x.pid").write_text(f"{proc.pid}\n")
    pid = read_pid(tmp_path / "x.pid")
    assert pid == proc.pid and alive(pid)
    assert not stop_pid(pid, timeout=0.3, then=None)  # TERM ignored, no fallback: still there
    assert stop_pid(pid, timeout=0.3, sig=signal.SIGTERM, then=signal.SIGKILL)
    assert not alive(pid) and stop_pid(pid)  # a reaped child; stopping again is a no-op
    assert read_pid(tmp_path / "missing.pid") is None and not alive(None)
