"""Training: records -> prepared examples -> SFT (trl SFTTrainer) -> GRPO (trl GRPOTrainer); LoRA + face projector."""
