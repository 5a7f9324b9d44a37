"""The agent desk: accounts and sessions, and relaying messages to users."""
