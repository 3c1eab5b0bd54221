"""skillsync schemas."""
