"""Human handoff: tickets, transcripts, service hours, agent notifications."""
