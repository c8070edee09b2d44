"""Functional tests: the real ``aisle`` command line and a real server process, over HTTP."""
