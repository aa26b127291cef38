"""Drive a running workspace the way a browser does: through the proxy, with the user's token.

Code is run in a real kernel over the kernel websocket, so every isolation check executes
inside the sandbox exactly as a researcher's code would.
"""

from __future__ import annotations

import contextlib
import json
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import requests
import websocket
from cloisonne.platform.localhub import LocalHub


class KernelError(AssertionError):
    pass


@dataclass
class Workspace:
    hub: LocalHub
    user: str
    server: str
    token: str

    @property
    def base(self) -> str:
        suffix = f"{self.server}/" if self.server else ""
        return f"{self.hub.url}/user/{self.user}/{suffix}"

    def get(self, path: str, **kw: object) -> requests.Response:
        return requests.get(self.base + path, headers=self._headers(), timeout=30, **kw)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def run(self, code: str, timeout: float = 60) -> str:
        """Execute ``code`` in a fresh kernel; return its stdout, raise KernelError on error."""
        kernel = requests.post(self.base + "api/kernels", headers=self._headers(), json={},
                               timeout=60)  # fmt: skip
        kernel.raise_for_status()
        kernel_id = kernel.json()["id"]
        try:
            return self._execute(kernel_id, textwrap.dedent(code), timeout)
        finally:
            requests.delete(self.base + f"api/kernels/{kernel_id}", headers=self._headers(),
                            timeout=30)  # fmt: skip

    def _execute(self, kernel_id: str, code: str, timeout: float) -> str:
        url = self.base.replace("http://", "ws://") + f"api/kernels/{kernel_id}/channels"
        ws = websocket.create_connection(url, header=self._headers(), timeout=timeout)
        try:
            msg_id = uuid.uuid4().hex
            ws.send(json.dumps({
                "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": self.user,
                           "session": uuid.uuid4().hex, "version": "5.3"},
                "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
                "content": {"code": code, "silent": False, "store_history": False,
                            "user_expressions": {}, "allow_stdin": False},
            }))  # fmt: skip
            out: list[str] = []
            error = None
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                msg = json.loads(ws.recv())
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind = msg["msg_type"]
                if kind == "stream":
                    out.append(msg["content"]["text"])
                elif kind == "error":
                    error = "\n".join(msg["content"]["traceback"])
                elif kind == "status" and msg["content"]["execution_state"] == "idle":
                    break
            else:
                raise TimeoutError(f"kernel did not finish within {timeout} s")
        finally:
            ws.close()
        if error:
            raise KernelError(f"{error}\nstdout:\n{''.join(out)}")
        return "".join(out)

    def terminal(self, command: str, timeout: float = 30) -> str:
        """Type ``command`` into a fresh JupyterLab terminal; return what it printed (the
        output between two markers, so the prompt and the echoed line are left out)."""
        term = requests.post(self.base + "api/terminals", headers=self._headers(), timeout=30)
        term.raise_for_status()
        name = term.json()["name"]
        url = self.base.replace("http://", "ws://") + f"terminals/websocket/{name}"
        ws = websocket.create_connection(url, header=self._headers(), timeout=timeout)
        mark = uuid.uuid4().hex[:8]
        # the markers are printed from pieces, so the echoed command line never matches them
        line = f"echo BEGIN-'{mark}'; {command}; echo END-'{mark}'\r"
        seen = ""
        try:
            ws.send(json.dumps(["stdin", line]))
            deadline = time.monotonic() + timeout
            while f"END-{mark}\r\n" not in seen:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"terminal did not finish within {timeout} s:\n{seen}")
                msg = json.loads(ws.recv())
                if msg[0] == "stdout":
                    seen += msg[1]
        finally:
            ws.close()
            requests.delete(self.base + f"api/terminals/{name}", headers=self._headers(),
                            timeout=30)  # fmt: skip
        return seen.split(f"BEGIN-{mark}\r\n", 1)[1].split(f"END-{mark}\r\n")[0]

    def run_json(self, code: str, timeout: float = 60) -> object:
        """Run code whose last stdout line is JSON; return it parsed."""
        return json.loads(self.run(code, timeout).strip().splitlines()[-1])


def wait_ready(hub: LocalHub, user: str, server: str, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        model = hub.api("GET", f"/users/{user}").json()
        s = model["servers"].get(server)
        if s and s.get("ready"):
            return s
        if not s or not s.get("pending"):
            raise RuntimeError(f"{user}/{server} is not starting: {s}\n{hub.log_tail()}")
        time.sleep(0.05)
    raise TimeoutError(f"{user}/{server} not ready in {timeout} s")


def server_path(user: str, server: str) -> str:
    return f"/users/{user}/servers/{server}" if server else f"/users/{user}/server"


def spawn(hub: LocalHub, user: str, server: str) -> Workspace:
    r = hub.api("POST", server_path(user, server))
    if r.status_code not in (201, 202):
        raise RuntimeError(f"spawn {user}/{server}: {r.status_code} {r.text}")
    if r.status_code == 202:
        wait_ready(hub, user, server)
    return Workspace(hub, user, server, user_token(hub, user))


def stop(hub: LocalHub, user: str, server: str) -> None:
    r = hub.api("DELETE", server_path(user, server))
    assert r.status_code in (202, 204), r.text
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        s = hub.api("GET", f"/users/{user}").json()["servers"].get(server)
        if not s:
            return
        time.sleep(0.05)
    raise TimeoutError(f"{user}/{server} did not stop")


def user_token(hub: LocalHub, user: str) -> str:
    r = hub.api("POST", f"/users/{user}/tokens", json={"note": "test", "expires_in": 3600})
    r.raise_for_status()
    return r.json()["token"]


@contextlib.contextmanager
def running(hub: LocalHub, *servers: tuple[str, str]) -> Iterator[list[Workspace]]:
    """Spawn each (user, server) in turn; stop every one started, even when a later one fails."""
    with contextlib.ExitStack() as started:
        workspaces = []
        for user, server in servers:
            workspaces.append(spawn(hub, user, server))
            started.callback(stop, hub, user, server)
        yield workspaces
