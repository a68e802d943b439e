"""Beyond the lecture (notebook 7): LoRA from scratch and other fine-tuning strategies, compared."""
