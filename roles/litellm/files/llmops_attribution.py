"""Attribution of every call to this box and its owner, set by the proxy (llmops.devbox).

LiteLLM loads this file as a callback (litellm_settings.callbacks: llmops_attribution.attribution)
from the directory of its config file. Before each call it rewrites the request so that the trace
LiteLLM sends to Langfuse names:

* the box owner as the Langfuse user id (metadata.trace_user_id, which wins over the end user id
  taken from the client's ``user`` field);
* the box, the owner and the model group as tags (``box:<name>``, ``owner:<owner>``,
  ``model_group:<model>``); the box is also the tracing environment (LANGFUSE_TRACING_ENVIRONMENT,
  set in the proxy's environment, not here);
* Cline's task (``litellm_session_id``, the same ``cline-<ULID>`` for every call of a task) as the
  Langfuse session, each call its own trace in it (LiteLLM would otherwise use the session id as
  the trace id and pile the whole task into one trace).

A client may not pose as another engineer or box: the identity keys it sends are replaced or
dropped, and so are the per-request Langfuse parameters that would send the trace to another
Langfuse project or environment.
"""

from __future__ import annotations

import os
import uuid

try:  # the proxy image; unit tests import this file without LiteLLM
    from litellm.integrations.custom_logger import CustomLogger
except ImportError:  # pragma: no cover - exercised only outside the image
    CustomLogger = object

OWNER_ENV = "LLMOPS_BOX_OWNER"
BOX_ENV = "LLMOPS_BOX_NAME"

# Tag prefixes only the proxy may set.
RESERVED_TAG_PREFIXES = ("box:", "owner:", "model_group:")

# Metadata keys that decide whose trace a call lands in: trace_user_id is replaced; the others
# would attach the call to an existing trace (keeping that trace's user) or rewrite its fields.
IDENTITY_METADATA_KEYS = ("trace_user_id", "existing_trace_id", "update_trace_keys")

# Per-request Langfuse parameters LiteLLM honours in the body or in metadata
# (StandardCallbackDynamicParams): another project, host or environment.
LANGFUSE_REQUEST_PARAMS = (
    "langfuse_public_key",
    "langfuse_secret",
    "langfuse_secret_key",
    "langfuse_host",
    "langfuse_environment",
    "langfuse_span_scope",
)

# Where the proxy keeps request metadata ("litellm_metadata" on the batches/responses/messages routes).
METADATA_KEYS = ("metadata", "litellm_metadata")


def attribute(data: dict, owner: str, box: str) -> dict:
    """Rewrite one request body in place so its trace names ``owner`` and ``box``; return it."""
    for param in LANGFUSE_REQUEST_PARAMS:
        data.pop(param, None)

    slots = [data[key] for key in METADATA_KEYS if isinstance(data.get(key), dict)]
    if not slots:
        data["metadata"] = {}
        slots = [data["metadata"]]

    session = data.get("litellm_session_id")
    model_group = data.get("model")
    call_trace_id = uuid.uuid4().hex
    for metadata in slots:
        for key in IDENTITY_METADATA_KEYS + LANGFUSE_REQUEST_PARAMS:
            metadata.pop(key, None)
        metadata["trace_user_id"] = owner
        if session and not metadata.get("session_id"):
            metadata["session_id"] = str(session)
        if session and not metadata.get("trace_id"):
            metadata["trace_id"] = call_trace_id
        client_tags = metadata.get("tags")
        kept = [
            tag for tag in (client_tags if isinstance(client_tags, list) else [])
            if isinstance(tag, str) and not tag.startswith(RESERVED_TAG_PREFIXES)
        ]
        ours = [f"box:{box}", f"owner:{owner}"]
        if isinstance(model_group, str) and model_group:
            ours.append(f"model_group:{model_group}")
        metadata["tags"] = kept + ours
    return data


class Attribution(CustomLogger):
    """LiteLLM callback: applies attribute() to every request before it is sent on."""

    def __init__(self, owner: str | None = None, box: str | None = None):
        if CustomLogger is not object:
            super().__init__()
        self.owner = owner if owner is not None else os.environ.get(OWNER_ENV, "")
        self.box = box if box is not None else os.environ.get(BOX_ENV, "")
        if not self.owner or not self.box:
            # The role always sets both; a proxy without them would log anonymous traces.
            raise RuntimeError(f"llmops_attribution: {OWNER_ENV} and {BOX_ENV} must be set in the proxy's environment")

    async def async_pre_call_hook(self, user_api_key_dict, cache, data, call_type):
        return attribute(data, self.owner, self.box)


attribution = Attribution()
