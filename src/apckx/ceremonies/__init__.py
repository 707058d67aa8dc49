"""Ceremony recipes on top of the service layer: import_kek, import_key, export_key, migrate,
cleanup, and the journal that records every resource they create."""
