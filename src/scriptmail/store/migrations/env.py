"""Alembic environment: the engine comes from the caller (store.migrate), never from an ini file."""

from alembic import context

from scriptmail.store.schema import metadata

engine = context.config.attributes["engine"]
with engine.connect() as connection:
    if engine.dialect.name == "postgresql":
        # Several nodes may start at once: one migrates, the others wait for it.
        connection.exec_driver_sql("SELECT pg_advisory_lock(7283451)")
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
    if engine.dialect.name == "postgresql":
        connection.exec_driver_sql("SELECT pg_advisory_unlock(7283451)")
        connection.commit()
