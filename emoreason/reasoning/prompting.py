"""Moved to `emoreason.prompting` (prompts are read by several layers); this name stays for old imports."""

from ..prompting import *  # noqa: F401,F403
