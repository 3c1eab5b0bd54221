"""Data quality: the day's Great Expectations suite run inside PostgreSQL (validate), and the
end-to-end check of a run against what partners were acknowledged for (verify).
"""
