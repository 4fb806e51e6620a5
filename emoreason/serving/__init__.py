"""Serving: the OpenAI-compatible gateway (`emoreason serve`) in front of the embedded engine or a VLM server."""
