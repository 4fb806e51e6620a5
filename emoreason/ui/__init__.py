"""The Gradio demo (`emoreason ui`), a client of the gateway."""
