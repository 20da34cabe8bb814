"""schemathesis hooks of the contract run (``tests/system/test_contract.py`` loads them with
``SCHEMATHESIS_HOOKS=contract_checks``): one check on top of schemathesis's own.

``positive_data_acceptance`` is configured (``contract.toml``) to let a schema-valid request be refused with
400 or 422, because some refusals are the domain's and no schema can say them: a point on Earth outside the
city (``outside_service_area``), an opaque cursor or consistency token the API did not issue. This check
takes back what that allows: such a refusal must name its domain reason, never the codes of a request the
schema should have ruled out (``validation_error``, ``bad_request``).
"""

from __future__ import annotations

from typing import Any

import schemathesis

MALFORMED = frozenset({"validation_error", "bad_request"})


def _error_code(response: Any) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error.get("code") if isinstance(error, dict) else None


@schemathesis.check
def schema_valid_request_refused_as_malformed(ctx: Any, response: Any, case: Any) -> bool | None:
    """A request the schema allows is never refused as malformed: the schema is as strict as the code."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code not in (400, 422):
        return None
    code = _error_code(response)
    if code in MALFORMED:
        raise AssertionError(
            f"a schema-valid request was refused as {code} ({response.status_code}): "
            "the schema is looser than the validation"
        )
    return None
