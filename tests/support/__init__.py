"""Helpers shared by the tests (importable as ``support``: pyproject puts tests/ on pytest's pythonpath).

Not tests themselves, and never imported by product code.
"""
