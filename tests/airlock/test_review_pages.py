"""The review pages, rendered by the real app (tokens stand in for the hub login)."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest
from api_helpers import Service, upload
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

pytestmark = pytest.mark.server  # starts a server: not in `make unit`

SMALL = b"region,count\nnord,120\nsud,3\n"


@pytest.fixture
def svc(tmp_path):
    service = Service(tmp_path)
    yield service
    service.stop()


async def page(svc: Service, path: str, token: str, form: dict | None = None) -> tuple[int, str]:
    svc.serve()
    kw = {"headers": {"Authorization": f"token {token}"}, "follow_redirects": True}
    if form is not None:
        kw.update(method="POST", body=urlencode(form))
    try:
        r = await AsyncHTTPClient().fetch(svc.client.base + path, **kw)
    except HTTPClientError as exc:
        r = exc.response
    return r.code, r.body.decode()


async def test_lead_sees_files_checks_and_acts_from_the_page(svc) -> None:
    r = await svc.client.submit("ws:alice:cardio", [upload("t.csv", SMALL)])
    rid = r.json()["id"]
    code, html = await page(svc, "airlock/", "user:carol")
    assert code == 200 and rid in html and "To review" in html
    code, html = await page(svc, f"airlock/requests/{rid}", "user:carol")
    assert code == 200 and r.json()["files"][0]["sha256"] in html
    assert "threshold" in html.lower() or "fail" in html  # the check report is shown
    assert 'name="decision:t.csv"' in html and "Reject" in html
    # rejecting without a comment is refused on the page, with the reason
    code, html = await page(svc, f"airlock/requests/{rid}/reject", "user:carol", {"comment": ""})
    assert code == 400 and "comment" in html
    form = {"decision:t.csv": "approve", "comment:t.csv": ""}
    code, html = await page(svc, f"airlock/requests/{rid}/review", "user:carol", form)
    assert code == 200 and re.search(r'id="state">in_review<', html)
    code, html = await page(svc, f"airlock/requests/{rid}/review", "user:dave", form)
    assert code == 200 and re.search(r'id="state">released<', html)
    # the requester's page offers the downloads once released
    code, html = await page(svc, f"airlock/requests/{rid}", "user:alice")
    assert f"api/airlock/requests/{rid}/files/t.csv" in html and "Download" in html


async def test_pages_show_nothing_to_others(svc) -> None:
    rid = (await svc.client.submit("ws:alice:cardio", [upload("t.csv", SMALL)])).json()["id"]
    code, html = await page(svc, f"airlock/requests/{rid}", "user:bob")
    assert code == 404 and "t.csv" not in html
    code, html = await page(svc, "airlock/", "user:bob")
    assert rid not in html
    code, html = await page(svc, f"airlock/requests/{rid}", "user:alice")
    assert code == 200 and "Download" not in html and 'name="decision' not in html
