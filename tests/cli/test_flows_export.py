"""`flask flows export`: the preferences form's Flow JSON, for the business to publish."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask

from bot.wiring.services import services


def export(app: Flask, *args: str) -> dict[str, Any]:
    result = app.test_cli_runner().invoke(args=["flows", "export", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def component(document: dict[str, Any], kind: str) -> dict[str, Any]:
    (screen,) = document["screens"]
    (found,) = [c for c in screen["layout"]["children"] if c["type"] == kind]
    return found


def data_field(document: dict[str, Any], reference: str) -> dict[str, Any]:
    """The screen's data field a "${data.<name>}" reference names."""
    name = reference.removeprefix("${data.").removesuffix("}")
    return document["screens"][0]["data"][name]


def test_the_export_is_flow_json_with_one_checkbox_per_configured_category(app: Flask) -> None:
    document = export(app)
    assert document["version"] == "7.1"
    (screen,) = document["screens"]
    assert screen["terminal"] is True and screen["title"] == "Nimbus Bakery"
    boxes = component(document, "CheckboxGroup")
    choices = data_field(document, boxes["data-source"])["__example__"]
    catalog = services(app).catalog
    assert [c["id"] for c in choices] == list(catalog.category_ids)
    assert [(c["title"], c["description"]) for c in choices] == [
        (c.title["en"], c.description["en"]) for c in catalog.categories
    ]
    assert data_field(document, boxes["init-value"])["type"] == "array"
    # Every text the form shows is filled in by the message: declared, with an example.
    for reference in ("${data.heading}", "${data.intro}", boxes["label"]):
        assert data_field(document, reference)["__example__"]


def test_the_form_completes_with_the_boxes_ticked(app: Flask) -> None:
    footer = component(export(app), "Footer")
    action = footer["on-click-action"]
    assert action == {
        "name": "complete",
        "payload": {"form": "preferences", "categories": "${form.categories}"},
    }


@pytest.mark.parametrize(("language", "title"), [("en", "Offers"), ("ar", "العروض")])
def test_the_examples_are_in_the_language_asked_for(app: Flask, language: str, title: str) -> None:
    document = export(app, "--language", language)
    boxes = component(document, "CheckboxGroup")
    assert data_field(document, boxes["data-source"])["__example__"][1]["title"] == title
