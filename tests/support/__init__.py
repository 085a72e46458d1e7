"""Helpers of the tests that are not tests: the synthetic lesson scene, the fake face scorer,
builders of recordings, manifests and lessons, databases, Chromium. Imported as ``support.*``
(pytest puts ``tests`` on ``sys.path``: ``pythonpath`` in pyproject.toml); fixtures live in the
``conftest.py`` files."""
