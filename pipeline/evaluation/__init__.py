"""Measuring summary quality against human references: datasets, ROUGE, baselines, LLM-judged coherence."""
