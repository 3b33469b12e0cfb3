"""Document loading: .txt/.md (encoding detection), .pdf (pypdf) and .epub into a normalised Document."""

from __future__ import annotations

from pipeline.documents.headings import looks_like_chapter
from pipeline.documents.loader import SUPPORTED_SUFFIXES, document_from_text, load_document
from pipeline.language import detect_language

__all__ = ["SUPPORTED_SUFFIXES", "detect_language", "document_from_text", "load_document", "looks_like_chapter"]
