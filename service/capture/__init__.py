"""Served uploads kept for learning: the store (SQLite or PostgreSQL) and its writer."""
