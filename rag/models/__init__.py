"""Offline model provisioning: everything is built from files that PyPI packages ship."""
