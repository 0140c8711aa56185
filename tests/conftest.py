"""Root conftest: pytest's own pytester, for the tests of the ocfs2lab pytest plugin."""

pytest_plugins = ["pytester"]
