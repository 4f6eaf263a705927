"""The store: schema, migrations, and the queue operations every other part goes through."""
