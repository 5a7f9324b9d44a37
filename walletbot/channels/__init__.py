"""Rasa input channels: WeChat Official Account, web chat page, agent desk."""
