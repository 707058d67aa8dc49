"""Helpers shared by test modules (imported as ``support``: ``tests/conftest.py`` puts
``tests/`` on ``sys.path``, since ``--import-mode=importlib`` lets no test module import
another)."""
