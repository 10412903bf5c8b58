"""Fine-tuning on support logs: loading and conversion, SFT examples, LoRA training, evaluation, review export."""
