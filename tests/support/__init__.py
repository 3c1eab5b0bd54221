"""Helpers shared by the tests: events for throwaway partners, publishing, reading back."""
