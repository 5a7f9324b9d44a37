"""Custom Rasa NLU components for Chinese wallet conversations."""
