"""Elasticsearch's error bodies: ``{"error": {"root_cause": [...], "type", "reason"}, "status"}``."""

from __future__ import annotations

from typing import Any

__all__ = ["ServiceError", "error_body"]


class ServiceError(Exception):
    """An answer in Elasticsearch's error shape: ``status``, ``type`` and ``reason``."""

    def __init__(
        self,
        status: int,
        type: str,
        reason: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.type = type
        self.reason = reason
        self.headers = headers or {}
        self.caused_by: dict[str, str] | None = None

    def body(self) -> dict[str, Any]:
        body = error_body(self.status, self.type, self.reason)
        if self.caused_by is not None:
            body["error"]["caused_by"] = self.caused_by
        return body


def error_body(status: int, type: str, reason: str) -> dict[str, Any]:
    """The body Elasticsearch answers an error with (its root cause is the error itself)."""
    cause = {"type": type, "reason": reason}
    return {"error": {"root_cause": [cause], **cause}, "status": status}


def not_found(inference_id: str) -> ServiceError:
    return ServiceError(
        404, "resource_not_found_exception", f"Inference endpoint not found [{inference_id}]"
    )


def validation(errors: list[str]) -> ServiceError:
    numbered = "".join(f"{i}: {e};" for i, e in enumerate(errors, 1))
    return ServiceError(400, "validation_exception", f"Validation Failed: {numbered}")


def bad_request(reason: str) -> ServiceError:
    return ServiceError(400, "status_exception", reason)
