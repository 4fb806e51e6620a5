"""`emoreason ui`: the Gradio chat demo, over an in-process embedded gateway or a running one."""

from __future__ import annotations

import argparse

from ...defaults import GATEWAY_PORT, UI_PORT


def register(sub) -> None:
    u = sub.add_parser("ui", help="the Gradio chat demo (in-process embedded gateway, or --gateway URL)")
    u.add_argument("--gateway", default=None, help=f"a running gateway, e.g. http://127.0.0.1:{GATEWAY_PORT}")
    u.add_argument("--api-key", default=None, help="the gateway's key")
    u.add_argument("--host", default="127.0.0.1")
    u.add_argument("--port", type=int, default=UI_PORT)
    u.add_argument("--share", action="store_true", help="a public gradio.live link")
    u.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ...ui.app import run_ui

    run_ui(args.gateway, args.api_key, args.host, args.port, args.share)
    return 0
