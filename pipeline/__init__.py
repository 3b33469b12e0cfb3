"""tome's library: documents, tokens, chunking, planning, the LLM client and rate budget, the engine, the store."""
