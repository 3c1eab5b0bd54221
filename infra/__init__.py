"""skillsync infra."""
