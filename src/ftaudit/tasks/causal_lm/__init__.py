"""Causal language modelling (decoder LLMs): supervised fine-tuning on prompt -> response pairs, response-only loss."""
