"""The publishing kit partners use, and a seeded simulator of the city's partners."""
