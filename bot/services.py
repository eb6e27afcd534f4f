"""The app's long-lived collaborators, built once by create_app and passed to whoever needs them."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app
from sqlalchemy.engine import Engine

from bot.settings import Settings
from flows.catalog import Catalog
from storage.kv import KeyValueStore

EXTENSION_KEY = "optin"


@dataclass(slots=True, kw_only=True)
class Services:
    settings: Settings
    catalog: Catalog
    engine: Engine
    store: KeyValueStore

    def init_app(self, app: Flask) -> None:
        app.extensions[EXTENSION_KEY] = self


def services(app: Flask | None = None) -> Services:
    return (app or current_app).extensions[EXTENSION_KEY]
