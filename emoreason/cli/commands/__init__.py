"""One module per `emoreason` subcommand; each has `register(subparsers)` and `run(args) -> int`."""

from . import analyze, data, evaluate, make_tiny_model, recipes, sample_images, serve, train, ui, vllm_serve

# The order `emoreason --help` lists them in.
COMMANDS = [analyze, evaluate, serve, vllm_serve, ui, make_tiny_model, data, train, recipes, sample_images]
