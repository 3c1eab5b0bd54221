"""skillsync warehouse."""
