"""Compact storage of an event's detail pane data (steps, modified properties, details).

Raw JSON is most of a naive cache's size (reference/perf-baselines.md), and the detail pane
reads one event at a time, so it is kept as zlib-compressed JSON with a preset dictionary of
the words Entra's provisioning steps repeat in every event. The first byte says which format
a blob uses; dictionaries are never changed, only added, so old blobs stay readable.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

_MAX_DETAIL_BYTES = 4 * 1024 * 1024
"""Decompressed size limit, so a corrupt or hostile blob cannot exhaust memory."""

_PLAIN = 0
_DICTIONARY_V1 = 1

# Frequent substrings of provisioning steps and modified properties (graph-api.md 1.7, 1.9),
# most frequent last (zlib prefers matches near the end of the dictionary).
_ZDICT_V1 = (
    b'"oldValue":null,"newValue":"False""True"'
    b'"displayName":"accountEnabled""displayName":"active""displayName":"displayName"'
    b'"displayName":"emails[type eq \\"work\\"].value""displayName":"externalId"'
    b'"displayName":"name.givenName""displayName":"name.familyName""displayName":"mail"'
    b'"displayName":"userPrincipalName""displayName":"members""objectId"'
    b'"provisioningStepType":"referenceResolution""provisioningStepType":"matching"'
    b'"provisioningStepType":"processing""EntrySynchronizationAdd""EntrySynchronizationUpdate"'
    b'"EntryExportUpdate""EntryExportDelete""EntryImportUpdate""EntryImportDelete"'
    b'"SkipReason":"NotEffectivelyEntitled""IsActive":"True""IsInProvisioningScope":"True"'
    b'"Scoping filter evaluation passed":"True""User has the required role":"True"'
    b'"Assigned to the application":"True""Active in the source system":"True"'
    b'"description":"Determine if User in scope by evaluating against each scoping filter",'
    b'"description":"Received User \'change of type (Add) from Azure Active Directory",'
    b'"description":"Received Group \'change of type (Update) from Azure Active Directory",'
    b'"description":"User \' was created in Harness","description":"User \' was updated in Harness'
    b'"details":{},"modifiedProperties":[{"displayName":"'
    b'"name":"EntryExportAdd","provisioningStepType":"export","status":"failure"'
    b'"name":"EntrySynchronizationScoping","provisioningStepType":"scoping","status":"success"'
    b'"name":"EntryImportAdd","provisioningStepType":"import","status":"success"'
    b'{"provisioningSteps":[{"description":"'
)


def pack_detail(detail: dict[str, Any]) -> bytes:
    """Compress an event's detail for the cache."""
    text = json.dumps(detail, separators=(",", ":"), ensure_ascii=False)
    compressor = zlib.compressobj(level=6, zdict=_ZDICT_V1)
    # "replace": a lone surrogate in API text cannot be UTF-8; it must not fail the save.
    body = text.encode("utf-8", "replace")
    return bytes([_DICTIONARY_V1]) + compressor.compress(body) + compressor.flush()


def unpack_detail(blob: bytes | None) -> dict[str, Any]:
    """The detail saved by `pack_detail`; an empty dict when absent or unreadable."""
    if not blob:
        return {}
    kind, body = blob[0], blob[1:]
    try:
        if kind == _DICTIONARY_V1:
            decompressor = zlib.decompressobj(zdict=_ZDICT_V1)
        elif kind == _PLAIN:
            decompressor = zlib.decompressobj()
        else:
            return {}
        text = decompressor.decompress(body, _MAX_DETAIL_BYTES)
        loaded = json.loads(text.decode("utf-8"))
    except (zlib.error, UnicodeDecodeError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}
