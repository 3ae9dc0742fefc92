"""Alembic environment: runs on the connection `Store.migrate` hands over (or `sqlalchemy.url` when run by hand)."""

from alembic import context
from sqlalchemy import create_engine

from service.db import Base

connection = context.config.attributes.get("connection")


def run(conn) -> None:
    context.configure(connection=conn, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    run(connection)
else:
    with create_engine(context.config.get_main_option("sqlalchemy.url")).begin() as conn:
        run(conn)
