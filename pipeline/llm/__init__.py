"""The LLM boundary: request/response types, the HTTP client, retry policy and providers."""
