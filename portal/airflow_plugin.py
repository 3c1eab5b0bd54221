"""Airflow 3 plugin: a link in Airflow's navigation to the skillsync portal."""

from __future__ import annotations

import os

from airflow.plugins_manager import AirflowPlugin

DEFAULT_PORTAL = "http://127.0.0.1:18300"


def portal_address() -> str:
    """The address set for the portal (the same variable the portal announces)."""
    return os.environ.get("SKILLSYNC_PORTAL_PUBLIC_URL") or DEFAULT_PORTAL


class PortalLinkPlugin(AirflowPlugin):
    name = "skillsync_portal"
    # A class attribute, as AirflowPlugin declares it.
    external_views = [  # noqa: RUF012
        {"name": "skillsync portal", "href": portal_address(), "destination": "nav",
         "category": "browse"},
    ]
