"""Training data: one record format (FEA-20K JSONL), converters, validation, synthesis of reasoning."""

from .records import RecordError, TrainingRecord, read_jsonl, to_dataset, write_jsonl

__all__ = ["RecordError", "TrainingRecord", "read_jsonl", "to_dataset", "write_jsonl"]
