"""The control database plane: tables, engine, migrations and the batch manifest.

``_tables``       the SQLAlchemy schema (Alembic migrations in ``_migrations/`` build it)
``_engine``       one engine per process: pool sizes, SQLite's durability pragmas, WAL truncation
``_migrate``      upgrading a database to the newest schema from inside the program
``_manifest``     the commit of a stored batch and the listings readers trust
``_settings``     store-wide settings recorded once (where the event files live)
``_rate_limits``  the per-device token bucket, one statement on SQLite and PostgreSQL
``_losses``       the per-device loss counters (events an agent dropped), added with each batch's manifest row
"""
