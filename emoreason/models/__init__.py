"""The vision-language models: loading checkpoints (+ adapters), face tokens, offline tiny models."""
