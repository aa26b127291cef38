"""The export airlock end to end: a real workspace asks, the service checks, two leads approve
outside any workspace, the requester downloads outside; and what must be refused is. Last, the
JupyterLab extension in Debian's chromium (Playwright): right-click → Request export… → the
Exports panel shows it; a lead approves on the review page."""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
import requests
from cloisonne.platform.localhub import LocalHub

from .conftest import PASSWORDS, running_hub
from .oidc_login import login as oidc_login
from .workspace import Workspace, spawn, stop, user_token

TABLE = "region,count\nnord,120\nsud,85\n"

ASK = """
import json, os, subprocess, sys
from pathlib import Path
from cloisonne.workspace.export import ExportError, request_export
Path('results').mkdir(exist_ok=True)
Path('results/table.csv').write_text(%(table)r)
Path('results/small.csv').write_text('region,count\\nnord,120\\nsud,3\\n')
Path('notes.md').write_text('Figures for the paper')
out = {}
out['notebook'] = request_export(['results/table.csv', 'results/small.csv'], why='Table 1')
# editing the file after submission changes the workspace's copy, not the submitted one
Path('results/table.csv').write_text('region,count\\nnord,3\\n')
# the terminal: the same from the `cloisonne` command
cli = subprocess.run([os.path.join(os.path.dirname(sys.executable), 'cloisonne'), 'export',
                      'request', 'notes.md', '--why', 'notes'], capture_output=True, text=True)
out['cli'] = [cli.returncode, cli.stdout, cli.stderr]
# refused on the workspace side: outside the home, through .. or a symlink, nothing, too big
os.symlink('/data', 'data-link')
os.symlink('/etc/passwd', 'passwd-link')
with open('big.csv', 'wb') as f:
    f.truncate(5 * 1024 * 1024)
refusals = {}
for label, paths in [('dotdot', ['../../etc/passwd']), ('abs', ['/etc/hostname']),
                     ('symlink', ['passwd-link']), ('dir-link', ['data-link']),
                     ('empty', []), ('big', ['big.csv']), ('missing', ['nope.csv'])]:
    try:
        request_export(paths, why='x')
        refusals[label] = 'accepted'
    except ExportError as exc:
        refusals[label] = str(exc)
out['refusals'] = refusals
# the same request sent twice at once (a double click): one request
from concurrent.futures import ThreadPoolExecutor
Path('twice.csv').write_text(%(table)r)
with ThreadPoolExecutor(2) as pool:
    twice = list(pool.map(lambda _: request_export(['twice.csv'], why='once'), range(2)))
out['twice'] = [(r['id'], r['duplicate']) for r in twice]
print(json.dumps(out))
"""

FROM_WORKSPACE = """
import json, os, urllib.request, urllib.error
base, token = os.environ['CLOISONNE_SERVICE_URL'], os.environ['JUPYTERHUB_API_TOKEN']
def call(method, path, body=None):
    req = urllib.request.Request(base + path, method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={'Authorization': 'token ' + token})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
rid = %(rid)r
print(json.dumps({
    'download': call('GET', f'api/airlock/requests/{rid}/files/results/table.csv'),
    'review': call('POST', f'api/airlock/requests/{rid}/review', {'decision': 'approve'}),
    'other_project': call('POST', 'api/airlock/requests',
                          {'project': 'onco', 'justification': 'x', 'files': []}),
}))
"""


def api(hub: LocalHub) -> str:
    return f"{hub.url}/services/cloisonne/api/airlock/requests"


def call(hub: LocalHub, method: str, path: str, user: str, **kw: object) -> requests.Response:
    token = user_token(hub, user)
    return requests.request(method, api(hub) + path, headers={"Authorization": f"token {token}"},
                            timeout=60, **kw)  # fmt: skip


@pytest.fixture(scope="module")
def hub() -> LocalHub:
    """A hub of its own: these tests kill its service, and the name space is the airlock's."""
    with running_hub("a", extra_env={"CLOISONNE_AIRLOCK_MAX_FILE": "4M"}) as h:
        yield h


@pytest.fixture(scope="module")
def alice(hub: LocalHub) -> Workspace:
    ws = spawn(hub, "alice", "cardio")
    yield ws
    stop(hub, "alice", "cardio")


def test_full_flow_from_a_notebook_and_a_terminal(hub: LocalHub, alice: Workspace) -> None:
    out = alice.run_json(ASK % {"table": TABLE}, timeout=120)
    req = out["notebook"]
    rid = req["id"]
    assert (req["state"], req["project"], req["requester"]) == ("checked", "cardio", "alice")
    checks = {f["name"]: f["check_status"] for f in req["files"]}
    assert checks == {"results/table.csv": "pass", "results/small.csv": "fail"}
    assert req["files"][0]["sha256"] == hashlib.sha256(TABLE.encode()).hexdigest()
    code, stdout, stderr = out["cli"]
    assert code == 0 and "checked" in stdout and "notes.md" in stdout, stderr

    refusals = out["refusals"]
    assert "only files in your home" in refusals["dotdot"]
    assert "only files in your home" in refusals["abs"]
    assert "only files in your home" in refusals["symlink"]
    assert "only files in your home" in refusals["dir-link"]
    assert "at least one file" in refusals["empty"]
    # the site's cap (4M here) reached the workspace: refused before any byte is sent
    assert "over the airlock's cap of 4194304 bytes" in refusals["big"]
    assert "no such file" in refusals["missing"]
    (id1, dup1), (id2, dup2) = out["twice"]
    assert id1 == id2 and sorted([dup1, dup2]) == [False, True]

    # the workspace itself may not download, review, or ask for another project
    refused = alice.run_json(FROM_WORKSPACE % {"rid": rid})
    assert refused == {"download": 403, "review": 403, "other_project": 403}

    # non-leads and the requester see nothing to act on; download before approval refused
    assert (
        call(hub, "POST", f"/{rid}/review", "bob", json={"decision": "approve"}).status_code == 404
    )
    assert (
        call(hub, "POST", f"/{rid}/review", "alice", json={"decision": "approve"}).status_code
        == 403
    )
    assert call(hub, "GET", f"/{rid}/files/results/table.csv", "alice").status_code == 403

    # two independent leads; the second sees the first's vote blinded until his own is in
    r = call(hub, "POST", f"/{rid}/review", "carol", json={"decision": "approve"})
    assert r.status_code == 200 and r.json()["state"] == "in_review", r.text
    seen = call(hub, "GET", f"/{rid}", "dave").json()
    assert seen["reviews"] == [] and seen["reviewers_in"] == ["carol"]
    r = call(hub, "POST", f"/{rid}/review", "dave", json={"decision": "approve"})
    assert r.status_code == 200 and r.json()["state"] == "released", r.text

    # released: the requester downloads outside the workspace, with the SHA-256
    r = call(hub, "GET", f"/{rid}/files/results/table.csv", "alice")
    assert r.status_code == 200 and r.content == TABLE.encode()
    assert r.headers["X-Content-SHA256"] == hashlib.sha256(TABLE.encode()).hexdigest()

    stored = [p for p in (hub.state / "airlock").rglob("*") if p.is_file()]
    assert (hub.state / "airlock").stat().st_mode & 0o777 == 0o700
    assert all(p.stat().st_mode & 0o777 == 0o400 for p in stored)

    cli = Path(sys.executable).parent / "cloisonne"
    verify = subprocess.run([str(cli), "audit", "verify"], env=hub.env(),
                            capture_output=True, text=True)  # fmt: skip
    assert verify.returncode == 0, verify.stdout + verify.stderr
    export = subprocess.run([str(cli), "audit", "export"], env=hub.env(),
                            capture_output=True, text=True).stdout  # fmt: skip
    for kind in ("submitted", "checked", "approved", "released"):
        assert f"airlock.request.{kind}" in export
    assert "airlock.file.downloaded" in export and "airlock.access.denied" in export


RESUBMIT = """
import json, os, subprocess, sys
from pathlib import Path
from cloisonne.workspace.export import request_export
Path('t3.csv').write_text('region,count\\nnord,120\\nsud,4\\n')
print(json.dumps(request_export('t3.csv', why='Table 3')['id']))
"""


def test_returned_then_resubmitted_from_the_terminal(hub: LocalHub, alice: Workspace) -> None:
    rid = alice.run_json(RESUBMIT)
    vote = {"votes": {"t3.csv": {"decision": "request_changes", "comment": "sud < 11"}}}
    assert call(hub, "POST", f"/{rid}/review", "carol", json=vote).status_code == 200
    r = call(hub, "POST", f"/{rid}/return", "carol", json={"comment": "suppress sud"})
    assert r.json()["state"] == "returned"
    fix = (
        "import subprocess, os, sys; from pathlib import Path\n"
        "Path('t3.csv').write_text('region,count\\nnord,120\\nsud,\\n')\n"
        "cli = os.path.join(os.path.dirname(sys.executable), 'cloisonne')\n"
        f"r = subprocess.run([cli, 'export', 'resubmit', {rid!r}, 't3.csv', '--comment', 'done'],"
        " capture_output=True, text=True)\n"
        "print(r.returncode, r.stdout, r.stderr)"
    )
    out = alice.run(fix)
    assert out.startswith("0 ") and "checked" in out, out
    view = call(hub, "GET", f"/{rid}", "carol").json()
    assert (view["state"], view["round"], view["files"][0]["check_status"]) == (
        "checked",
        2,
        "pass",
    )


def service_pid(hub: LocalHub) -> int:
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
            env = (proc / "environ").read_bytes()
        except OSError:
            continue
        if b"cloisonne.service" in cmd and str(hub.state).encode() in env:
            return int(proc.name)
    raise AssertionError("the cloisonne service is not running")


def test_service_killed_mid_upload_leaves_nothing(hub: LocalHub) -> None:
    before = {p for p in (hub.state / "airlock").rglob("*") if p.is_file()}
    url = urlparse(api(hub))
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    body = b'{"justification": "x", "files": [{"name": "a.csv", "content": "' + b"QUFB" * 500_000
    conn.putrequest("POST", url.path)
    conn.putheader("Authorization", f"token {user_token(hub, 'alice')}")
    conn.putheader("Content-Length", str(len(body) * 2))
    conn.endheaders()
    conn.send(body)  # half of what was announced
    time.sleep(0.3)
    pid = service_pid(hub)
    os.kill(pid, signal.SIGKILL)
    conn.close()
    deadline = time.monotonic() + 30  # the hub restarts its managed service
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{hub.url}/services/cloisonne/api/health", timeout=2).ok:
                break
        except requests.RequestException:
            pass
        time.sleep(0.2)
    assert service_pid(hub) != pid
    after = {p for p in (hub.state / "airlock").rglob("*") if p.is_file()}
    assert after == before and not list((hub.state / "airlock" / "tmp").iterdir())
    listed = call(hub, "GET", "", "alice").json()["requests"]
    assert all(r["files"] for r in listed)


def login(hub: LocalHub, user: str) -> requests.Session:
    """Sign in through the OIDC provider; the session then holds the hub's cookies."""
    result = oidc_login(hub, user, PASSWORDS[user])
    assert result.ok, result.response.text[:500]
    return result.session


def review_on_page(hub: LocalHub, user: str, rid: str) -> str:
    session = login(hub, user)
    page = session.get(f"{hub.url}/services/cloisonne/airlock/requests/{rid}", timeout=30)
    assert page.status_code == 200 and "decision:fig.csv" in page.text, page.text[:500]
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
    r = session.post(f"{hub.url}/services/cloisonne/airlock/requests/{rid}/review", timeout=30,
                     data={"_xsrf": xsrf, "decision:fig.csv": "approve"})  # fmt: skip
    assert r.status_code == 200, r.text[:500]
    return re.search(r'id="state">([a-z_]+)<', r.text).group(1)


def test_review_pages_with_hub_login(hub: LocalHub, alice: Workspace) -> None:
    rid = alice.run_json(
        "import json; from pathlib import Path; from cloisonne.workspace.export import request_export\n"
        f"Path('fig.csv').write_text({TABLE!r})\n"
        "print(json.dumps(request_export('fig.csv', why='figure')['id']))"
    )
    # a form posted without the xsrf token is not taken as the user's
    session = login(hub, "carol")
    session.get(f"{hub.url}/services/cloisonne/airlock/", timeout=30)
    r = session.post(f"{hub.url}/services/cloisonne/airlock/requests/{rid}/review",
                     data={"decision:fig.csv": "approve"}, timeout=30, allow_redirects=False)  # fmt: skip
    assert r.status_code in (302, 403) and "in_review" not in r.text
    assert review_on_page(hub, "carol", rid) == "in_review"
    assert review_on_page(hub, "dave", rid) == "released"
    mine = login(hub, "alice")
    page = mine.get(f"{hub.url}/services/cloisonne/airlock/requests/{rid}", timeout=30)
    link = re.search(r'href="([^"]+/files/fig\.csv)"', page.text).group(1)
    r = mine.get(f"{hub.url}{link}", timeout=30)
    assert r.status_code == 200 and r.content == TABLE.encode()


def test_jupyterlab_extension_is_served_and_its_route_submits(alice: Workspace) -> None:
    lab = alice.get("lab")
    assert lab.status_code == 200 and "@cloisonne/airlock" in lab.text
    alice.run("from pathlib import Path; Path('lab.csv').write_text('region,count\\nnord,120\\n')")
    headers = {"Authorization": f"token {alice.token}"}
    r = requests.post(alice.base + "cloisonne/exports", headers=headers, timeout=60,
                      json={"paths": ["lab.csv"], "why": "from the lab"})  # fmt: skip
    assert r.status_code == 201, r.text
    assert (r.json()["project"], r.json()["state"]) == ("cardio", "checked")
    r = requests.post(alice.base + "cloisonne/exports", headers=headers, timeout=60,
                      json={"paths": ["../../etc/passwd"], "why": "x"})  # fmt: skip
    assert r.status_code == 400 and "only files in your home" in r.json()["message"]
    listed = requests.get(alice.base + "cloisonne/exports", headers=headers, timeout=60).json()
    assert "lab.csv" in {f["name"] for req in listed["requests"] for f in req["files"]}


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # fmt: skip


# -- the JupyterLab extension in a real browser (Debian's chromium via Playwright) --------


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not shutil.which(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def browser_login(browser, hub: LocalHub, user: str):  # noqa: ANN201
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{hub.url}/hub/login")  # redirects to the OIDC provider's form
    page.fill("#username", user)
    page.fill("#password", PASSWORDS[user])
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/hub/(home|spawn|user).*|.*/user/.*"))
    return context, page


def test_request_export_from_the_file_browser_then_a_lead_approves(
    browser, hub: LocalHub, alice: Workspace
) -> None:
    alice.run(
        "from pathlib import Path; Path('browser.csv').write_text('region,count\\nnord,150\\n')"
    )
    context, page = browser_login(browser, hub, "alice")
    try:
        page.goto(f"{hub.url}/user/alice/cardio/lab")
        item = page.locator(".jp-DirListing-item", has_text="browser.csv")
        item.click(button="right")
        page.locator(".lm-Menu-itemLabel", has_text="Request export…").click()
        dialog = page.locator(".jp-Dialog")
        dialog.locator("textarea").fill("Table 2 of the paper")
        dialog.locator("button", has_text="Submit").click()
        body = page.locator(".jp-Dialog-body", has_text="Request").first
        request_id = re.search(r"Request (\S+) was submitted", body.inner_text()).group(1)
        page.locator(".jp-Dialog button", has_text="Ok").click()
        entry = page.locator(f'#cloisonne-exports [data-request-id="{request_id}"]')
        entry.wait_for()
        assert "checked" in entry.inner_text() and "browser.csv" in entry.inner_text()
        href = entry.locator("a").get_attribute("href")
        assert href.endswith(f"/services/cloisonne/airlock/requests/{request_id}"), href
    finally:
        context.close()

    context, page = browser_login(browser, hub, "carol")
    try:
        page.goto(f"{hub.url}/services/cloisonne/airlock/")
        page.locator("a", has_text=request_id).click()
        assert "browser.csv" in page.locator("table.files").inner_text()
        page.locator("button", has_text="Submit review").click()
        assert page.locator("#state").inner_text() == "in_review"  # cardio needs two
    finally:
        context.close()
