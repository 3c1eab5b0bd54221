"""skillsync consumers."""
