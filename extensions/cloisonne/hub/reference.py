"""docs/configuration.md, generated from the Site traits and the chart's mapping onto them."""

from __future__ import annotations

from .kube import CHART_SETTINGS
from .site import REPO, default_text, described, env_name, type_name


def reference_markdown() -> str:
    """docs/configuration.md, generated from the traits (``cloisonne settings --markdown``)."""
    lines = [
        "# Configuration reference",
        "",
        "Generated from `cloisonne.hub.site.Site` by `cloisonne settings --markdown`; do not",
        "edit by hand (a test checks that this file is current).",
        "",
        "The local platform reads each setting from the environment variable named here;",
        "the Kubernetes chart renders its values into `cloisonne.yaml`, which fills the same",
        "settings from the chart values named here (see docs/deploy-kubernetes.md).",
        "",
        "| variable | chart value | type | default | meaning |",
        "|---|---|---|---|---|",
    ]
    chart = {name: key for key, name in CHART_SETTINGS.items()}
    for name, trait, backend in described():
        where = f"`{chart[name]}`" if name in chart else f"*{backend} only*"
        default = "" if trait.metadata.get("secret") else default_text(trait)
        default = default.replace(str(REPO), "<repo>")
        help_text = " ".join(trait.help.split()).replace("|", "\\|")
        lines.append(
            f"| `{env_name(name)}` | {where} | {type_name(trait)} | `{default}` | {help_text} |"
        )
    return "\n".join(lines) + "\n"
