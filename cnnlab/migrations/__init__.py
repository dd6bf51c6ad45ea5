"""The capture store's schema history, as Alembic revisions (``cnnlab.captures.upgrade``
applies them; ``python -m service migrate`` runs it by hand)."""
