"""Work-arounds for the environments emoreason runs in (see ../shared/ENVIRONMENT.md)."""
