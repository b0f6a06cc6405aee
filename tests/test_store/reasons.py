"""Reasons and codes as Entra and Harness write them (quoted in the references), shared by the
playbook's tests and the failure answers' tests."""

from __future__ import annotations

# graph-api.md §1.9.2 (v1.0 failed event) and §1.9.4 (old beta shape), verbatim.
CONTOSO_409 = (
    "Message: Contoso returned an error response with the HTTP status code 409.  This response "
    "indicates that a user or a group already exisits with the same name. This can be avoided by "
    "identifying and removing the conflicting user from Contoso via the Contoso administrative "
    "user interface, or removing the current user from the scope of provisioning either by "
    "removing their assignment to the Contoso application in Azure Active Directory or adding a "
    "scoping filter to exclude the user."
)
BOX_409 = CONTOSO_409.replace("Contoso", "Box")

# graph-api.md §1.10 and §3.2 [DOC ANALYZE-LOGS, HOW-WORKS], verbatim.
RETRIED_IN_40 = "This attempt is automatically retried in 40 minutes."
RETRIED_AND_NOTIFIED = (
    "There's nothing to do. This attempt is automatically retried and Microsoft was notified of "
    "this issue."
)
NEXT_SYNC_CYCLE = (
    "If an error in the target system prevents an individual user from being added, updated, or "
    "deleted in the target system, the operation is retried in the next sync cycle."
)
# peers.md A-3, verbatim (the notes elide the date).
RETRIED_0_TIMES_ELIDED = (
    "This operation was retried 0 times. It will be retried again after this date: …"
)


def entra_reason(status_line: str, web_response: str, retried: int, after: str) -> str:
    """A reason in the shape Entra writes for SCIM apps (StatusCode / Message / Web Response)."""
    return (
        f"StatusCode: {status_line}\r\nMessage: Processing of the HTTP request resulted in an "
        "exception. Please see the HTTP response returned by the 'Response' property of this "
        f"exception for details.\r\nWeb Response: \r\n{web_response}. This operation was retried "
        f"{retried} times. It will be retried again after this date: {after}"
    )


# harness-api.md §1.9: the constructed SCIM error for a duplicate identifier (body status 404!)
# and the constructed 403 ErrorDTO; §1.2: the 401 messages.
HARNESS_DUP_IDENTIFIER_BODY = (
    '{"id":null,"externalId":null,"meta":null,"detail":"Try using different user group '
    'identifier, [Dev_Team] cannot be used","status":404,'
    '"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"]}'
)
HARNESS_403_BODY = (
    '{"status":"ERROR","code":"NG_ACCESS_DENIED","message":"Token needs to have '
    "core_usergroup_view permission on account: px7xd_BFRCi-pfWPYXVjvw to perform SCIM "
    'UserGroup action","correlationId":"c3f9b3a4-…","detailedMessage":null}'
)
HARNESS_401_EXPIRED = (
    '{"status":"ERROR","code":"INVALID_TOKEN","message":"Invalid call: Invalid token or token '
    'expired. Account id for API called: px7xd_BFRCi-pfWPYXVjvw"}'
)
HARNESS_401_NO_BEARER = (
    '{"status":"ERROR","code":"INVALID_TOKEN","message":"Bearer prefix not found"}'
)
HARNESS_500_BODY = (
    '{"status":"ERROR","code":"UNKNOWN_ERROR","message":"Oops, something went wrong on our end. '
    'Please contact Harness Support."}'
)
HARNESS_429_BODY = "Too Many requests. Throttled. Max QPS: 2.5"


# graph-api.md §1.10: every documented code.
DOCUMENTED_CODES = [
    ("Conflict", "conflict"),
    ("EntryConflict", "conflict"),
    ("TooManyRequests", "throttled"),
    ("InternalServerError", "harness_internal_error"),
    ("InsufficientRights", "permission_missing"),
    ("MethodNotAllowed", "method_not_allowed"),
    ("NotPermitted", "permission_missing"),
    ("Unauthorized", "permission_missing"),
    ("UnprocessableEntity", "unexpected_response"),
    ("WebExceptionProtocolError", "target_unavailable"),
    ("InvalidAnchor", "invalid_anchor"),
    ("NotImplemented", "unexpected_response"),
    ("MandatoryFieldsMissing", "missing_values"),
    ("MissingValues", "missing_values"),
    ("SchemaAttributeNotFound", "mapping_error"),
    ("InternalError", "entra_internal_error"),
    ("InvalidDomain", "invalid_domain"),
    ("Timeout", "target_unavailable"),
    ("LicenseLimitExceeded", "license_limit"),
    ("DuplicateTargetEntries", "duplicate_target"),
    ("DuplicateSourceEntries", "duplicate_source"),
    ("ImportSkipped", "import_skipped"),
    ("EntrySynchronizationSkipped", "skipped"),
    ("SystemForCrossDomainIdentityManagementMultipleEntriesInResponse", "multiple_entries"),
    ("SystemForCrossDomainIdentityManagementServiceIncompatible", "scim_incompatible"),
    ("SchemaPropertyCanOnlyAcceptValue", "mapping_error"),
    ("SystemForCrossDomainIdentityManagementInvalidCredentials", "token_invalid"),
]
