"""The project register on the hub: ``/hub/register`` (HTML, or ``?format=json|csv``).

A health-data hub publishes the projects it hosts (SATRE 1.7.02): title, purpose, authorisation,
controller, dates, datasets and state, for current and past projects (a closed project stays in
the register). The page is for signed-in users unless ``ProjectRules.register_public`` is set;
it shows only ``core.lifecycle.register_entry``'s public fields, never members or settings.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
from typing import Any

from jupyterhub import orm
from jupyterhub.handlers import BaseHandler

from ..core.lifecycle import REGISTER_FIELDS, ProjectRules, register_entry
from ..core.projects import ProjectError, is_project_group, project_from_properties

COLUMNS = (
    ("title", "Project"), ("purpose", "Purpose"), ("authorisations", "Authorisation"),
    ("controller", "Data controller"), ("investigator", "Principal investigator"),
    ("start", "Start"), ("end", "End"), ("datasets", "Data"), ("state", "State"),
)  # fmt: skip

PAGE = """{% extends "page.html" %}
{% block main %}
<div class="container">
  <h1>Register of projects</h1>
  <p>The research projects this platform hosts or has hosted, with their authorisation.
     Also as <a href="?format=json">JSON</a> and <a href="?format=csv">CSV</a>.</p>
  <table class="table table-striped" id="cloisonne-register">
    <thead><tr>{% for key, label in columns %}<th>{{ label }}</th>{% endfor %}</tr></thead>
    <tbody>
    {% for row in rows %}
      <tr data-project="{{ row.id }}">{% for key, label in columns %}
        <td>{{ row[key] }}</td>{% endfor %}</tr>
    {% else %}
      <tr><td colspan="{{ columns|length }}">No projects yet.</td></tr>
    {% endfor %}
    </tbody>
  </table>
</div>
{% endblock %}
"""


def register_rows(db: Any, today: datetime.date) -> list[dict[str, Any]]:
    rows = []
    for group in db.query(orm.Group).order_by(orm.Group.name):
        if not is_project_group(group.name, group.properties):
            continue
        try:
            project = project_from_properties(group.name, group.properties)
        except ProjectError:
            continue  # the spawn gate reports invalid properties; the register shows valid ones
        rows.append(register_entry(project, today))
    return rows


def to_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=REGISTER_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


class RegisterHandler(BaseHandler):
    async def get(self) -> None:
        rules = ProjectRules(config=self.settings.get("config"))
        if not rules.register_public and self.current_user is None:
            self.redirect(self.get_login_url())
            return
        rows = register_rows(self.db, datetime.datetime.now(datetime.UTC).date())
        fmt = self.get_argument("format", "html")
        if fmt == "json":
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps(rows, ensure_ascii=False))
        elif fmt == "csv":
            self.set_header("Content-Type", "text/csv; charset=utf-8")
            self.finish(to_csv(rows))
        else:
            template = self.settings["jinja2_env_sync"].from_string(PAGE)
            ns = {**self.template_namespace, "xsrf_token": self.xsrf_token.decode("ascii")}
            self.finish(template.render(**ns, rows=rows, columns=COLUMNS))
