"""The workspace guard, through the hub and proxy, in a real sandboxed workspace: each route's
answer and the audit event it leaves, user-level override attempts, the outflow meter, the
kernel hook."""

from __future__ import annotations

import time

import pytest
import requests
from cloisonne.audit.store import AuditStore
from cloisonne.platform.localhub import LocalHub

from .workspace import Workspace, spawn, stop

SETUP = """
import os
open('notes.txt', 'w').write('hello')
open('table.csv', 'w').write('a,b\\n1,2\\n')
open('blob.bin', 'wb').write(bytes(range(256)) * 4)
open('big.txt', 'w').write('x' * (11 * 1024 * 1024))
import base64
png = base64.b64decode('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==')
open('plot.png', 'wb').write(png)
os.path.lexists('data-link.csv') or os.symlink('/data/dcir-sample/dispensings.csv', 'data-link.csv')
os.path.lexists('etc-link') or os.symlink('/etc', 'etc-link')
import nbformat
nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('1+1')]), 'analysis.ipynb')
print('ok')
"""


@pytest.fixture(scope="module")
def ws(platform: LocalHub):
    workspace = spawn(platform, "alice", "cardio")
    try:
        assert workspace.run(SETUP).strip() == "ok"
        yield workspace
    finally:
        stop(platform, "alice", "cardio")


def audit_events(hub: LocalHub, after: int = 0) -> list:
    hub.wait_audit_forwarded()
    store = AuditStore(hub.db_url, create=False)
    try:
        return list(store.iter_events(after_seq=after))
    finally:
        store.close()


def last_seq(hub: LocalHub) -> int:
    events = audit_events(hub)
    return events[-1].seq if events else 0


# method, path, expected status, expected audit event (type, allowed) or None
ROUTES = [
    ("GET", "api/contents/notes.txt", 200, ("guard.read", True)),
    ("GET", "api/contents/table.csv", 200, ("guard.read", True)),
    ("GET", "api/contents/analysis.ipynb", 200, ("guard.read", True)),
    ("GET", "api/contents/plot.png?format=base64&type=file", 200, ("guard.read", True)),
    ("GET", "files/plot.png", 200, ("guard.read", True)),
    ("GET", "files/notes.txt", 403, ("guard.read", False)),
    ("GET", "files/analysis.ipynb", 403, ("guard.read", False)),
    ("GET", "files/table.csv?download=1", 403, ("guard.read", False)),
    ("GET", "api/contents/blob.bin", 403, ("guard.read", False)),
    ("GET", "api/contents/blob.bin?format=base64&type=file", 403, ("guard.read", False)),
    ("GET", "api/contents/big.txt", 403, ("guard.read", False)),
    ("GET", "api/contents/data-link.csv", 403, ("guard.read", False)),
    ("GET", "api/contents/etc-link/passwd", 403, ("guard.read", False)),
    ("GET", "files/data-link.csv", 403, ("guard.read", False)),
    ("GET", "nbconvert/html/analysis.ipynb?download=true", 403, ("guard.route", False)),
    ("POST", "nbconvert/html", 403, ("guard.route", False)),
    ("GET", "api/nbconvert", 403, ("guard.route", False)),
    ("GET", "view/notes.txt", 403, ("guard.route", False)),
    ("POST", "api/events", 403, ("guard.route", False)),
    ("POST", "lab/api/plugins", 403, ("guard.route", False)),
    ("GET", "kernelspecs/python3/kernel.json", 403, ("guard.route", False)),
    ("GET", "kernelspecs/python3/logo-64x64.png", 200, None),
    ("GET", "api/contents", 200, None),  # a directory listing carries no file bytes
]


@pytest.mark.parametrize(("method", "path", "status", "event"), ROUTES)
def test_route(platform: LocalHub, ws: Workspace, method, path, status, event) -> None:
    before = last_seq(platform)
    r = requests.request(method, ws.base + path, headers=ws._headers(), json={}, timeout=30)
    assert r.status_code == status, r.text[:300]
    if status == 403:
        text = r.text
        assert "export airlock" in text or "not allowed" in text or "outside" in text or \
            "binary" in text or "limit" in text or "cannot" in text or "Only" in text  # fmt: skip
    new = [e for e in audit_events(platform, before) if e.type in ("guard.read", "guard.route")]
    if event is None:
        assert new == []
        return
    assert [(e.type, e.fields["allowed"]) for e in new] == [event]
    e = new[0]
    assert (e.user, e.project) == ("alice", "cardio")
    if e.type == "guard.read" and e.fields["allowed"]:
        assert e.fields["bytes"] > 0 and len(e.fields["sha256"]) == 64


def test_upload_is_audited_with_size_and_hash(platform: LocalHub, ws: Workspace) -> None:
    before = last_seq(platform)
    body = {"type": "file", "format": "text", "content": "uploaded,data\n1,2\n"}
    r = requests.put(ws.base + "api/contents/upload.csv", headers=ws._headers(), json=body)
    assert r.status_code == 201
    (event,) = [e for e in audit_events(platform, before) if e.type == "guard.import"]
    assert event.fields["bytes"] == len(body["content"]) and event.fields["allowed"]
    import hashlib

    assert event.fields["sha256"] == hashlib.sha256(body["content"].encode()).hexdigest()


def test_page_config_locks_the_download_plugins(ws: Workspace) -> None:
    page = ws.get("lab").text
    for plugin in ("filebrowser-extension:download", "docmanager-extension:download",
                   "filebrowser-extension:share-file", "filebrowser-extension:open-browser-tab",
                   "notebook-extension:export"):  # fmt: skip
        assert f"@jupyterlab/{plugin}" in page.split("disabledExtensions")[1][:4000]


def test_user_level_config_cannot_switch_the_guard_off(platform: LocalHub, ws: Workspace) -> None:
    ws.run(
        """
        import os, json
        off = "c.ServerApp.jpserver_extensions = {'cloisonne.workspace.guard': False}\\n" \\
              "c.ServerApp.contents_manager_class = 'jupyter_server.services.contents.largefilemanager.AsyncLargeFileManager'\\n"
        for d in ('.jupyter', '.', '.local/etc/jupyter'):
            os.makedirs(d, exist_ok=True)
            open(os.path.join(d, 'jupyter_server_config.py'), 'w').write(off)
            open(os.path.join(d, 'jupyter_server_config.json'), 'w').write(json.dumps(
                {'ServerApp': {'jpserver_extensions': {'cloisonne.workspace.guard': False}}}))
        os.makedirs('.jupyter/labconfig', exist_ok=True)
        open('.jupyter/labconfig/page_config.json', 'w').write(json.dumps(
            {'disabledExtensions': {'@jupyterlab/filebrowser-extension:download': False},
             'lockedExtensions': {}}))
        """
    )
    stop(platform, "alice", "cardio")
    again = spawn(platform, "alice", "cardio")
    assert again.get("files/notes.txt").status_code == 403
    assert again.get("nbconvert/html/analysis.ipynb").status_code == 403
    assert "@jupyterlab/filebrowser-extension:download" in again.get("lab").text
    ws.token = again.token


def test_outflow_meter_counts_kernel_output_and_raises_the_budget_alert(
    platform: LocalHub, ws: Workspace
) -> None:
    before = last_seq(platform)
    # 5 MiB in chunks, below jupyter_server's iopub rate limit (1 MB/s), which would drop it
    ws.run(
        "import time\nfor _ in range(100):\n    print('y' * 52428)\n    time.sleep(0.08)",
        timeout=120,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        events = audit_events(platform, before)
        kernel_bytes = sum(e.fields["bytes"].get("kernel", 0) for e in events
                           if e.type == "guard.outflow")  # fmt: skip
        alerts = [e for e in events if e.type == "alert.outflow_budget"]
        if kernel_bytes >= 5 * 1024 * 1024 and alerts:
            break
        time.sleep(0.5)
    assert kernel_bytes >= 5 * 1024 * 1024
    assert (
        alerts and alerts[0].project == "cardio" and alerts[0].fields["budget_bytes"] == 4 * 2**20
    )


def test_kernel_hook_reports_connect_attempts(platform: LocalHub, ws: Workspace) -> None:
    # the only kernel is the platform's, whose launcher installs the hook
    specs = ws.get("api/kernelspecs").json()["kernelspecs"]
    assert list(specs) == ["python3"]
    assert "cloisonne.workspace.kernel" in specs["python3"]["spec"]["argv"]
    before = last_seq(platform)
    target = platform.site.hub_ip
    ws.run(
        f"""
        import socket
        s = socket.socket(); s.settimeout(0.5)
        try:
            s.connect(('{target}', 9))
        except OSError:
            pass
        import subprocess; subprocess.run(['true'])
        """
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        events = audit_events(platform, before)
        connects = [e for e in events if e.type == "kernel.socket_connect"]
        popen = [e for e in events if e.type == "kernel.subprocess_popen"]
        if connects and popen:
            break
        time.sleep(0.3)
    assert any(f"'{target}', 9" in e.fields["detail"] for e in connects)
    assert popen and connects[0].user == "alice" and connects[0].project == "cardio"


def test_no_bypass_extensions_and_no_user_labextensions(ws: Workspace) -> None:
    missing = ws.run_json(
        "import importlib.util, json\n"
        "print(json.dumps([importlib.util.find_spec(m) is None "
        "for m in ('jupyter_server_proxy', 'jupyter_archive')]))"
    )
    assert missing == [True, True]
    ws.run(
        """
        import os, json
        d = os.path.expanduser('~/.local/share/jupyter/labextensions/evil/static')
        os.makedirs(d, exist_ok=True)
        open(os.path.join(d, 'remoteEntry.abc.js'), 'w').write('leak')
        open(os.path.join(d, '..', 'package.json'), 'w').write(json.dumps(
            {'name': 'evil', 'jupyterlab': {'_build': {'load': 'static/remoteEntry.abc.js'}}}))
        """
    )
    assert ws.get("lab/extensions/evil/static/remoteEntry.abc.js").status_code == 404
    assert "evil" not in ws.get("lab").text


def test_terminal_output_is_metered(platform: LocalHub, ws: Workspace) -> None:
    import json as _json

    import websocket

    before = last_seq(platform)
    term = requests.post(ws.base + "api/terminals", headers=ws._headers(), timeout=30).json()
    url = ws.base.replace("http://", "ws://") + f"terminals/websocket/{term['name']}"
    conn = websocket.create_connection(url, header=ws._headers(), timeout=30)
    try:
        conn.send(
            _json.dumps(
                ["stdin", "head -c 300000 /dev/zero | tr '\\\\0' y; echo; echo DONE-MARK\r"]
            )
        )
        seen = 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            msg = _json.loads(conn.recv())
            if msg[0] == "stdout":
                seen += len(msg[1])
                if "DONE-MARK\r\n" in msg[1] and seen > 300000:
                    break
    finally:
        conn.close()
        requests.delete(ws.base + f"api/terminals/{term['name']}", headers=ws._headers())
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        events = audit_events(platform, before)
        terminal = sum(
            e.fields["bytes"].get("terminal", 0) for e in events if e.type == "guard.outflow"
        )
        if terminal >= 300000:
            break
        time.sleep(0.5)
    assert terminal >= 300000


JOURNAL_PROBE = """
import json, os
links, denied = [], []
for pid in filter(str.isdigit, os.listdir('/proc')):
    try:
        fds = os.listdir(f'/proc/{pid}/fd')
    except PermissionError:  # the server: non-dumpable
        denied.append(int(pid))
        continue
    except FileNotFoundError:
        continue
    for fd in fds:
        try:
            links.append(os.readlink(f'/proc/{pid}/fd/{fd}'))
        except OSError:
            pass
print(json.dumps({"links": links, "denied": denied, "server": os.getppid()}))
"""


def test_guard_events_go_through_a_journal_out_of_the_users_reach(
    platform: LocalHub, ws: Workspace
) -> None:
    folder = platform.state / "audit-journal"
    netns = platform.site.slot(platform.spawner_id("alice", "cardio")).netns
    (journal,) = folder.glob(f"{netns}-*.jsonl")
    assert folder.stat().st_mode & 0o777 == 0o700 and journal.stat().st_mode & 0o777 == 0o600
    header = journal.read_bytes().splitlines()[0]
    assert b'"project": "cardio"' in header and b'"user": "alice"' in header
    size = journal.stat().st_size
    before = last_seq(platform)
    assert ws.get("api/contents/notes.txt").status_code == 200
    assert journal.stat().st_size > size  # written by the guard before the answer
    (event,) = [e for e in audit_events(platform, before) if e.type == "guard.read"]
    assert (event.user, event.project, event.fields["path"]) == ("alice", "cardio", "/notes.txt")
    # A terminal's shell and the kernel hold no descriptor to it, and the server's cannot be
    # listed; the journal folder is not in the sandbox at all.
    term = requests.post(ws.base + "api/terminals", headers=ws._headers(), timeout=30).json()
    try:
        seen = ws.run_json(JOURNAL_PROBE)
    finally:
        requests.delete(ws.base + f"api/terminals/{term['name']}", headers=ws._headers())
    assert not [link for link in seen["links"] if "audit-journal" in link], seen["links"]
    assert seen["server"] in seen["denied"]
    assert ws.run(f"import os; print(os.path.exists({str(folder)!r}))").strip() == "False"
