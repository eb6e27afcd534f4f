"""Every API failure answers {"error": code, "message": text} with the right status."""

from __future__ import annotations

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


def error_response(status: int, code: str, message: str) -> tuple[Response, int]:
    return jsonify({"error": code, "message": message}), status


def register(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def on_api_error(exc: ApiError) -> tuple[Response, int]:
        response, status = error_response(exc.status, exc.code, exc.message)
        response.headers.update(exc.headers)
        return response, status

    @app.errorhandler(HTTPException)
    def on_http_error(exc: HTTPException) -> tuple[Response, int] | HTTPException:
        if not request.path.startswith("/api/") and request.path != "/webhook":
            return exc
        code = (exc.name or "error").lower().replace(" ", "_")
        response, status = error_response(exc.code or 500, code, exc.description or exc.name)
        # Keep what the exception says beyond its text, such as Allow on a 405 (RFC 9110).
        for name, value in exc.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response, status
