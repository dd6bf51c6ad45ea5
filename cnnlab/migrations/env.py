"""Alembic's environment: the revisions run on the connection ``cnnlab.captures.upgrade``
hands over (in its transaction, under its lock), never on a URL of their own."""

from alembic import context

connection = context.config.attributes["connection"]
# batch mode: SQLite alters a table by copying it; PostgreSQL alters it in place
context.configure(connection=connection, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
