"""Reusable widgets of the dashboard; they render cached data only."""
