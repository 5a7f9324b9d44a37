"""The FAQ knowledge base (``data/faq/``) and its builder."""
