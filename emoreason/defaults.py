"""Defaults that more than one part of emoreason uses, defined once.

The CLI flags, the backends' constructors, the gateway settings and the serving files read
these; change one here and every place that means the same thing changes with it.
"""

from __future__ import annotations

MAX_NEW_TOKENS = 384  # an analysis is ~150-300 tokens; room for a long one without runaway generation
REQUEST_TIMEOUT_S = 120.0  # one request to a model server / one analysis in the gateway
MAX_RETRIES = 3  # retries of a failed request to a model server (429, 5xx, timeouts)
CONCURRENCY = 8  # requests in flight to a model server from one client

# the gateway keeps recent analyses for follow-up turns (which re-send their image), up to this many bytes of
# pixels per served model: about ten 12-MP photos
FOLLOW_UP_CACHE_BYTES = 384 * 1024 * 1024
# at most this many waiting images go through the gateway's face front-end in one call (serving/batching.py)
FRONTEND_MAX_BATCH = 8

GATEWAY_PORT = 8000  # emoreason serve
VLLM_PORT = 8001  # emoreason vllm-serve (the gateway's upstream)
UI_PORT = 7860  # emoreason ui (Gradio's own default)
LOCAL_VLLM_URL = f"http://127.0.0.1:{VLLM_PORT}/v1"

ALIGNED_FACE_SIZE = 224  # px, the levelled face crop the VLM and the face encoder see
