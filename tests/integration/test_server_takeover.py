"""The workspace server is out of user code's reach (issue 11.1), proven from a real kernel.

The attack: a detached child of a kernel SIGKILLs the server and binds the server's port to
serve a marker through the proxy. The seccomp filter refuses every signal to the server (kill,
pidfd, fcntl(F_SETSIG)); behind it, the server is PID 1 of its sandbox, so SIGKILL and SIGSTOP
would be dropped by the kernel anyway; the server keeps its port; and when the server does die (here: killed by root
from outside), every process of the sandbox dies with it and the hub reports the workspace
stopped, its route removed, within 2 seconds.
"""

from __future__ import annotations

import os
import signal
import time

import requests
from cloisonne.platform.localhub import LocalHub

from .workspace import spawn, stop, user_token

MARKER = "impostor-7f3a"

ATTACK = """
import os, socket, time
home = os.environ['HOME']
server_pid = os.getppid()  # the kernel's parent: the server
pid = os.fork()
if pid == 0:
    os.setsid()
    if os.fork():
        os._exit(0)
    log = open(home + '/attack.log', 'a', buffering=1)
    for sig in (9, 15, 2, 1, 3, 10, 12, 19):  # KILL TERM INT HUP QUIT USR1 USR2 STOP
        try:
            os.kill(server_pid, sig)
            log.write(f'kill {{sig}} sent\\n')
        except OSError as e:
            log.write(f'kill {{sig}} errno {{e.errno}}\\n')
    try:
        import signal
        signal.pidfd_send_signal(os.pidfd_open(server_pid), 15)
        log.write('pidfd sent\\n')
    except OSError as e:
        log.write(f'pidfd errno {{e.errno}}\\n')
    try:
        import fcntl
        r, w = os.pipe()
        fcntl.fcntl(r, fcntl.F_SETOWN, server_pid)
        fcntl.fcntl(r, 10, 15)  # F_SETSIG: SIGTERM to the owner on I/O
        log.write('setsig done\\n')
    except OSError as e:
        log.write(f'setsig errno {{e.errno}}\\n')
    deadline = time.time() + 20
    while time.time() < deadline:
        s = socket.socket()
        try:
            s.bind(('0.0.0.0', 8888))
            s.listen()
            log.write('bound\\n')
            while True:
                c, _ = s.accept()
                c.recv(65536)
                c.sendall(b'HTTP/1.0 200 OK\\r\\nContent-Length: 13\\r\\n\\r\\n{marker}')
                c.close()
        except OSError as e:
            s.close()
            time.sleep(0.05)
    os._exit(0)
os.waitpid(pid, 0)
print('server', server_pid)
"""


def _server_state(hub: LocalHub, user: str, server: str) -> dict | None:
    return hub.api("GET", f"/users/{user}").json()["servers"].get(server)


def test_kernel_cannot_kill_or_replace_the_server(platform: LocalHub) -> None:
    ws = spawn(platform, "alice", "cardio")
    try:
        out = ws.run(ATTACK.format(marker=MARKER))
        assert out.split()[-1] == "1", out  # the kernel's parent, the server, is PID 1
        # the attacker keeps trying for 20 s; the server keeps answering, never the marker
        for _ in range(20):
            r = ws.get("api/status")
            assert MARKER not in r.text
            assert r.status_code == 200, r.text
            time.sleep(0.1)
        log = ws.run("import os\nprint(open(os.environ['HOME'] + '/attack.log').read())")
        # every signal to the server is refused by the seccomp filter (behind it, the kernel
        # would drop SIGKILL and SIGSTOP to PID 1 anyway)
        for sig in (9, 15, 2, 1, 3, 10, 12, 19):
            assert f"kill {sig} errno 1" in log, log
        assert "pidfd errno 1" in log and "setsig errno 1" in log, log
        assert "bound" not in log, log
    finally:
        stop(platform, "alice", "cardio")


def test_server_death_is_reported_within_two_seconds(platform: LocalHub) -> None:
    ws = spawn(platform, "alice", "cardio")
    stopped = False
    try:
        netns = platform.site.slot(platform.spawner_id("alice", "cardio")).netns
        # a detached process of user code that would outlive the server if it could
        ws.run("import subprocess\nsubprocess.Popen(['sleep', '600'], start_new_session=True)\n")
        server_pid = _server_pid(netns)
        os.kill(server_pid, signal.SIGKILL)  # the server dies, "for any reason"
        killed = time.monotonic()
        while _server_state(platform, "alice", "cardio") is not None:
            assert time.monotonic() - killed < 2.0, "the hub still reports the server"
            time.sleep(0.02)
        stopped = True
        # the route is gone: the proxy answers for the hub, not for a workspace
        r = requests.get(ws.base + "api/status", headers={"Authorization": f"token {ws.token}"},
                         allow_redirects=False, timeout=10)  # fmt: skip
        assert r.status_code != 200, r.text
        # nothing of the sandbox survived it
        assert not _pids_in_netns(netns)
    finally:
        if not stopped:
            stop(platform, "alice", "cardio")
    user_token(platform, "alice")  # the hub still works


def _pids_in_netns(netns: str) -> list[int]:
    target = (
        os.stat(f"/run/netns/{netns}").st_ino if os.path.exists(f"/run/netns/{netns}") else None
    )
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if target is not None and os.stat(f"/proc/{entry}/ns/net").st_ino == target:
                found.append(int(entry))
        except OSError:
            continue
    return found


def _server_pid(netns: str) -> int:
    for pid in _pids_in_netns(netns):
        try:
            cmdline = open(f"/proc/{pid}/cmdline", "rb").read()
        except OSError:
            continue
        if b"cloisonne.workspace.launch" in cmdline and b"bwrap" not in cmdline:
            return pid
    raise AssertionError(f"no server process in {netns}")
