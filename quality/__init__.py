"""skillsync quality."""
