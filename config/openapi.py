"""The OpenAPI schema documents every answer an operation can give, errors included, in the API's one shape.

Views declare their successes (and any error with a body of its own, such as a 409 carrying the current
version). `AutoSchema` adds the errors the shared machinery can produce, so a new endpoint is documented
truthfully without doing anything:

- 400 on every operation: a parameter or body the input layer (config/inputs.py) or a serializer refuses;
- 401 and 403 where credentials are required: no valid token, or a role or token scope that may not;
- 404 where the path names an object, or a page of a list is past its end;
- 409 on every POST, PUT and PATCH: the object's state does not allow it (a status, a taken name, a newer version);
- 413 and 415 where there is a body: too large, or a media type the operation does not take;
- 429 everywhere (every view is throttled), with `Retry-After`.

It also marks every optional query parameter `allowEmptyValue`: the API reads `?page=` as no page given.

Every error answer is `{"detail": "...", "errors": [{"message", "code", "field"?, ...}]}` (config.api).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular import openapi
from drf_spectacular.plumbing import ResolvedComponent
from rest_framework import serializers

WRITE_METHODS = ("POST", "PUT", "PATCH")  # our DELETEs (tokens) never conflict


class ApiErrorItemSerializer(serializers.Serializer):
    message = serializers.CharField()
    code = serializers.CharField(required=False, help_text="A stable, machine-readable reason.")
    field = serializers.CharField(
        required=False, help_text="The parameter or body field at fault (`definition.all[0].value`)."
    )
    path = serializers.CharField(required=False, help_text="Tag rules: the place in the rule tree.")
    row = serializers.IntegerField(
        required=False, help_text="Imports: the line of the file (the header is 1)."
    )
    column = serializers.CharField(required=False, help_text="Imports: the column at fault.")


class ApiErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="A one-line summary naming the first field at fault.")
    errors = ApiErrorItemSerializer(many=True)


# status -> (component name, description)
ERRORS: dict[str, tuple[str, str]] = {
    "400": (
        "BadRequest",
        "The request is invalid: `errors` names each field at fault. This includes text holding NUL "
        "characters or unpaired surrogates (anywhere, the query string too) and JSON nested deeper "
        "than the limit.",
    ),
    "401": ("Unauthorized", "No valid credentials: the token is missing, unknown, expired or revoked."),
    "403": ("Forbidden", "Your role, team or token scope does not allow this."),
    "404": ("NotFound", "No such object within your reach, or a page past the end of the list."),
    "409": (
        "Conflict",
        "The request conflicts with the object's current state (a status that does not allow the "
        "step, a name already taken, a newer version saved meanwhile).",
    ),
    "413": ("RequestTooLarge", "The body is larger than the limit."),
    "415": ("UnsupportedMediaType", "The body's media type is not one this operation takes."),
    "429": ("Throttled", "Too many requests: wait for the seconds given in `Retry-After`."),
}
RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}}


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's schema, with the error answers every operation can give (see the module)."""

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        for parameter in operation.get("parameters", []):
            # an optional query parameter given empty (`?page=`) is taken as not given: say so
            if parameter.get("in") == "query" and not parameter.get("required"):
                parameter["allowEmptyValue"] = True
        responses = operation.setdefault("responses", {})
        for code in self._error_codes(operation):
            declared = responses.get(code)
            if declared is None:
                responses[code] = self._error_response(code)
            elif not declared.get("content") and "$ref" not in declared:
                # declared without a body (`404: None`): it still has the error shape
                responses[code] = {**self._error_response_body(code), "description": declared["description"]}
        return operation

    def _error_codes(self, operation: dict[str, Any]) -> list[str]:
        security = operation.get("security") or []
        authenticated = bool(security) and {} not in security
        codes = ["400"]
        if authenticated:
            codes += ["401", "403"]
        paginated = any(p.get("name") == "page" for p in operation.get("parameters", []))
        if "{" in self.path or paginated:
            codes.append("404")
        if self.method in WRITE_METHODS:
            codes.append("409")
        if "requestBody" in operation:
            codes += ["413", "415"]
        if self.view.get_throttles():
            codes.append("429")
        # errors a view declared itself (with or without a body) get the shared shape too
        codes += [c for c in operation["responses"] if c.startswith("4") and c not in codes]
        return codes

    def _error_schema_ref(self) -> dict[str, str]:
        return self.resolve_serializer(ApiErrorSerializer, "response").ref

    def _error_response_body(self, code: str) -> dict[str, Any]:
        description = ERRORS.get(code, ("", "An error."))[1]
        body: dict[str, Any] = {
            "description": description,
            "content": {"application/json": {"schema": self._error_schema_ref()}},
        }
        if code == "429":
            body["headers"] = RETRY_AFTER
        return body

    def _error_response(self, code: str) -> dict[str, Any]:
        """A reference to the shared response component for `code` (registered on first use)."""
        name = ERRORS.get(code, (f"Error{code}", ""))[0]
        component = ResolvedComponent(
            name=name, type=ResolvedComponent.RESPONSE, object=name, schema=self._error_response_body(code)
        )
        self.registry.register_on_missing(component)
        return component.ref
