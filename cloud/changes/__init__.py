"""The change log every feature records into; the pull feeds read it. Imports no feature."""
